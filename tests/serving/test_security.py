"""API keys, per-client rate limits (in-process and shared through Redis), request body limits
(declared and streamed, also through a real uvicorn) and CORS."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import REDIS_URL
from tests.serving.conftest import OLD_STYLE_ID, World
from tests.support.ui import running_api

KEYS = ("key-one-0123456789", "key-two-0123456789")
PAPER = {"title": "Dark matter halos of dwarf galaxies", "abstract": "We simulate halos."}
READS = (
    "/v1/papers",
    f"/v1/papers/{OLD_STYLE_ID}",
    "/v1/search?q=galaxy",
    "/v1/categories",
    "/v1/stats",
)
PROD = pytest.mark.parametrize(
    "world", [pytest.param("prod", marks=pytest.mark.postgres)], indirect=True
)


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


# --- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/classify/batch"])
def test_posts_need_a_valid_key(start: Callable[..., TestClient], path: str) -> None:
    api = start(keys=KEYS)
    body = PAPER if path == "/v1/classify" else {"items": [PAPER]}

    missing = api.post(path, json=body)
    empty = api.post(path, json=body, headers=key(""))
    wrong = api.post(path, json=body, headers=key("key-three-0123456789"))
    case = api.post(path, json=body, headers=key(KEYS[0].upper()))
    prefix = api.post(path, json=body, headers=key(KEYS[0][:-1]))

    assert missing.status_code == empty.status_code == 401
    assert "X-API-Key" in missing.json()["detail"]
    assert wrong.status_code == case.status_code == prefix.status_code == 403
    assert wrong.json()["detail"] == "this API key is not valid"
    for valid in KEYS:
        assert api.post(path, json=body, headers=key(valid)).status_code == 200


def test_reads_are_open_unless_asked_for(start: Callable[..., TestClient]) -> None:
    api = start(keys=KEYS)

    for path in READS:
        assert api.get(path).status_code == 200, path


def test_reads_can_require_a_key(start: Callable[..., TestClient]) -> None:
    api = start(keys=KEYS, read_requires_key=True)

    for path in READS:
        assert api.get(path).status_code == 401, path
        assert api.get(path, headers=key("nope")).status_code == 403, path
        assert api.get(path, headers=key(KEYS[1])).status_code == 200, path
    assert api.get("/health").status_code == 200
    assert api.get("/health/ready").status_code == 200


def test_without_keys_everything_is_open(client: TestClient) -> None:
    assert client.post("/v1/classify", json=PAPER).status_code == 200
    assert client.post("/v1/classify", json=PAPER, headers=key("anything")).status_code == 200


# --- rate limits --------------------------------------------------------------------------------


def statuses(api: TestClient, count: int, **headers: str) -> list[int]:
    return [api.get("/v1/categories", headers=headers).status_code for _ in range(count)]


def test_the_request_after_the_burst_waits(start: Callable[..., TestClient]) -> None:
    api = start(rate_limit_per_minute=1, rate_limit_burst=3)

    assert statuses(api, 3) == [200, 200, 200]
    limited = api.get("/v1/papers")

    assert limited.status_code == 429
    assert 50 <= int(limited.headers["Retry-After"]) <= 61  # one request a minute
    assert "too many requests" in limited.json()["detail"]
    assert api.post("/v1/classify", json=PAPER).status_code == 429
    assert api.get("/health").status_code == 200  # health checks are never limited
    assert [api.get("/health/ready").status_code for _ in range(5)] == [200] * 5


def test_the_bucket_refills_at_the_rate(start: Callable[..., TestClient]) -> None:
    api = start(rate_limit_per_minute=60, rate_limit_burst=1)  # a token a second

    assert statuses(api, 2) == [200, 429]
    time.sleep(1.05)
    assert statuses(api, 2) == [200, 429]


def test_each_key_has_its_own_bucket_and_bad_keys_share_the_address_one(
    start: Callable[..., TestClient],
) -> None:
    api = start(keys=KEYS, rate_limit_per_minute=1, rate_limit_burst=2)

    assert statuses(api, 3, **key(KEYS[0])) == [200, 200, 429]
    assert statuses(api, 1, **key(KEYS[1])) == [200]
    # made-up keys cannot buy fresh buckets: they count against the client's address
    assert [
        api.get("/v1/categories", headers=key(f"made-up-{i}")).status_code for i in range(3)
    ] == [200, 200, 429]
    assert statuses(api, 1) == [429]


@PROD
def test_api_processes_share_one_bucket_in_redis(
    start: Callable[..., TestClient], world: World
) -> None:
    client_key = f"key-{uuid.uuid4().hex}"
    settings = {"keys": (client_key,), "rate_limit_per_minute": 1, "rate_limit_burst": 3}
    first, second = start(**settings), start(**settings)
    headers = key(client_key)

    answered = [
        api.get("/v1/categories", headers=headers).status_code
        for api in (first, second, first, second, first)
    ]

    assert answered == [200, 200, 200, 429, 429]
    digest = hashlib.sha256(client_key.encode()).hexdigest()[:16]
    bucket = f"{world.namespace}:ratelimit:api:key:{digest}"
    store = redis.Redis.from_url(REDIS_URL)
    assert store.exists(bucket)
    assert client_key.encode() not in b"".join(store.keys(f"{world.namespace}:*"))
    store.close()


# --- request bodies -----------------------------------------------------------------------------


def body_of(size: int) -> bytes:
    """A valid classify request of exactly `size` bytes."""
    empty = json.dumps({"title": "t", "abstract": ""}).encode()
    return json.dumps({"title": "t", "abstract": "a" * (size - len(empty))}).encode()


def chunks(body: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_declared_body_over_the_limit_is_refused(start: Callable[..., TestClient]) -> None:
    api = start(max_body_bytes=2048)
    headers = {"Content-Type": "application/json"}

    at_limit = api.post("/v1/classify", content=body_of(2048), headers=headers)
    over = api.post("/v1/classify", content=body_of(2049), headers=headers)
    on_a_read = api.request("GET", "/v1/papers", content=b"x" * 4096)

    assert at_limit.status_code == 200
    assert over.status_code == on_a_read.status_code == 413
    assert over.json() == {"detail": "the request body is over 2048 bytes"}


def test_a_streamed_body_over_the_limit_is_refused(start: Callable[..., TestClient]) -> None:
    api = start(max_body_bytes=2048)
    headers = {"Content-Type": "application/json"}

    at_limit = api.post("/v1/classify", content=chunks(body_of(2048)), headers=headers)
    over = api.post("/v1/classify", content=chunks(body_of(5000)), headers=headers)

    assert at_limit.status_code == 200
    assert over.status_code == 413, over.text
    assert over.json() == {"detail": "the request body is over 2048 bytes"}


@pytest.fixture(scope="module")
def uvicorn(embedded: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`uvicorn serving.main:app` (as `make serve` runs it) over the embedded world, with a
    2,048-byte body limit and an API key; its base URL."""
    env = embedded.environment(API_MAX_BODY_BYTES="2048", API_KEYS=KEYS[0])
    with running_api(embedded.conf, env, tmp_path_factory.mktemp("uvicorn")) as url:
        yield url


def test_a_real_server_refuses_bodies_over_the_limit(uvicorn: str) -> None:
    headers = {"Content-Type": "application/json", **key(KEYS[0])}
    with httpx.Client(base_url=uvicorn, headers=headers, timeout=30) as http:
        at_limit = http.post("/v1/classify", content=body_of(2048))
        declared = http.post("/v1/classify", content=body_of(2049))
        streamed = http.post("/v1/classify", content=chunks(body_of(50_000)))
        streamed_small = http.post("/v1/classify", content=chunks(body_of(1500)))
        after = http.get("/v1/categories")

    assert at_limit.status_code == streamed_small.status_code == 200
    assert declared.status_code == streamed.status_code == 413, streamed.text
    assert streamed.json() == {"detail": "the request body is over 2048 bytes"}
    assert after.status_code == 200  # the server goes on serving


def test_a_real_server_reads_its_settings_from_the_environment(uvicorn: str) -> None:
    with httpx.Client(base_url=uvicorn, timeout=30) as http:
        without_key = http.post("/v1/classify", json=PAPER)
        category = http.get(f"/v1/papers/{OLD_STYLE_ID}").json()["arxiv_categories"][0]

    assert without_key.status_code == 401
    assert category["name"] == "High Energy Physics - Theory"  # ARXIV_TAXONOMY was read


# --- CORS ---------------------------------------------------------------------------------------


def test_cors_allows_the_configured_origins_only(start: Callable[..., TestClient]) -> None:
    api = start(cors_origins=("https://papers.example",))
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-API-Key",
    }

    allowed = api.get("/v1/papers", headers={"Origin": "https://papers.example"})
    other = api.get("/v1/papers", headers={"Origin": "https://evil.example"})
    allowed_preflight = api.options(
        "/v1/classify", headers={"Origin": "https://papers.example", **preflight}
    )
    other_preflight = api.options(
        "/v1/classify", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://papers.example"
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers
    assert allowed_preflight.status_code == 200
    assert "x-api-key" in allowed_preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "POST" in allowed_preflight.headers["Access-Control-Allow-Methods"]
    assert other_preflight.status_code == 400
    assert "Access-Control-Allow-Origin" not in other_preflight.headers


def test_cors_for_any_origin(start: Callable[..., TestClient]) -> None:
    api = start(cors_origins=("*",))

    response = api.get("/v1/papers", headers={"Origin": "https://anywhere.example"})

    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_no_cors_unless_configured(client: TestClient) -> None:
    response = client.get("/v1/papers", headers={"Origin": "https://papers.example"})

    assert "Access-Control-Allow-Origin" not in response.headers
