"""Every operation of the OpenAPI schema fuzzed by schemathesis against the embedded world, with
valid and invalid input: never a server error, every response as the schema documents it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.serving.conftest import World, make_app

KEY = "fuzz-key-0123456789"
# schemathesis.pytest.from_fixture cannot run on pytest 9 (it sets Function._nodeid), and an
# app built at import would read the developer's environment: the operations are listed here
# and checked against the schema.
OPERATIONS = (
    "GET /health",
    "GET /health/ready",
    "GET /v1/papers",
    "GET /v1/papers/{arxiv_id}",
    "GET /v1/search",
    "GET /v1/authors/{name}/papers",
    "GET /v1/papers/{arxiv_id}/similar",
    "GET /feeds/categories/{category}",
    "GET /feeds/search",
    "GET /v1/digest/{category}",
    "PUT /v1/me/tags/{tag}/{arxiv_id}",
    "DELETE /v1/me/tags/{tag}/{arxiv_id}",
    "GET /v1/me/tags",
    "GET /v1/me/recommendations",
    "POST /v1/classify",
    "POST /v1/classify/batch",
    "GET /v1/categories",
    "GET /v1/stats",
    "GET /v1/monitoring/latest",
    "GET /v1/monitoring/runs",
    "GET /v1/monitoring/{run}/report.html",
)


@pytest.fixture(scope="module")
def fuzzed_app(embedded: World) -> Iterator[FastAPI]:
    """The API over the embedded world with an API key, so POSTs get past the key check."""
    app = make_app(embedded.settings(keys=(KEY,)))
    yield app
    app.state.services.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    labels = [result.ok().label for result in api_schema.get_all_operations()]

    assert sorted(labels) == sorted(OPERATIONS)


# Invalid input needs something to be invalid: the operations with parameters or a body that
# some input breaks (any string names a monitoring run: an unknown one is a 404).
WITHOUT_INPUT = (
    "GET /v1/me/tags",
    "GET /v1/categories",
    "GET /v1/stats",
    "GET /v1/monitoring/latest",
    "GET /v1/monitoring/{run}/report.html",
)
WITH_INPUT = [label for label in OPERATIONS[2:] if label not in WITHOUT_INPUT]


@pytest.mark.parametrize(
    ("label", "mode"),
    [(label, GenerationMode.POSITIVE) for label in OPERATIONS]
    + [(label, GenerationMode.NEGATIVE) for label in WITH_INPUT],
    ids=str,
)
def test_an_operation(
    api_schema: schemathesis.BaseSchema, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"X-API-Key": KEY}, checks=[not_a_server_error, response_schema_conformance]
        )

    fuzz()
