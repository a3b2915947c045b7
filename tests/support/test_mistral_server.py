"""Checks of the local Mistral test server with plain HTTP requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from arxiv_kedro.llm.checks import problems

from .mistral_server import (
    TRANSLATION_TEMPLATES,
    MistralServer,
    content,
    delay,
    invalid_content,
    malformed,
    not_json,
    overlong,
    prompt_messages,
    requested_languages,
    status,
    summary_text,
    translation_text,
    wrong_language,
)

KEY = "sk-server-test"
TITLE = "Quantum error correction with biased noise"
ABSTRACT = "We correct errors. The noise is biased. Thresholds improve markedly."


def summarize_body(languages: str = "fr (French), es (Spanish), de (German)") -> dict:
    values = {"title": TITLE, "abstract": ABSTRACT, "min_chars": 80, "max_chars": 700}
    return {
        "model": "mistral-small-latest",
        "messages": prompt_messages("summarize", languages=languages, **values),
        "response_format": {"type": "json_object"},
    }


def translate_body(summary: str, languages: str = "it (Italian)") -> dict:
    values = {"summary": summary, "languages": languages}
    return {
        "model": "mistral-medium-latest",
        "messages": prompt_messages("translate", **values),
    }


@pytest.fixture
def server() -> Iterator[MistralServer]:
    with MistralServer(api_key=KEY) as running:
        yield running


def post(server: MistralServer, body: object, key: str | None = KEY, **options):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    options.setdefault("timeout", 5)
    return requests.post(server.completions_url, json=body, headers=headers, **options)


def answer_of(response: requests.Response) -> dict:
    return json.loads(response.json()["choices"][0]["message"]["content"])


def test_a_summarize_prompt_gets_a_mistral_style_completion(server: MistralServer) -> None:
    body = summarize_body()

    response = post(server, body)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["object"] == "chat.completion"
    assert payload["id"].startswith("cmpl-")
    assert abs(payload["created"] - time.time()) < 60
    assert payload["model"] == "mistral-small-latest"
    [choice] = payload["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    answer = json.loads(choice["message"]["content"])
    assert answer == {
        "summary": summary_text(TITLE),
        "translations": {code: translation_text(code, TITLE) for code in ("fr", "es", "de")},
    }
    words = sum(len(m["content"].split()) for m in body["messages"])
    completion = len(choice["message"]["content"].split())
    assert payload["usage"] == {
        "prompt_tokens": words,
        "completion_tokens": completion,
        "total_tokens": words + completion,
    }


def test_answers_are_deterministic(server: MistralServer) -> None:
    first, second = post(server, summarize_body()), post(server, summarize_body())

    assert answer_of(first) == answer_of(second)
    assert first.json()["usage"] == second.json()["usage"]
    assert first.json()["id"] != second.json()["id"]


def test_a_translate_prompt_gets_only_translations(server: MistralServer) -> None:
    response = post(server, translate_body(summary_text(TITLE), "it (Italian), fr (French)"))

    assert response.json()["model"] == "mistral-medium-latest"
    assert answer_of(response) == {
        "translations": {"it": translation_text("it", TITLE), "fr": translation_text("fr", TITLE)}
    }


def test_the_requested_languages_are_read_from_the_prompt() -> None:
    user = summarize_body("es (Spanish), pt (Portuguese)")["messages"][1]["content"]

    assert requested_languages(user) == ["es", "pt"]
    assert requested_languages(summarize_body("")["messages"][1]["content"]) == []


def test_every_request_is_recorded(server: MistralServer) -> None:
    body = summarize_body()
    started = time.time()

    post(server, body)

    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.authorization == f"Bearer {KEY}"
    assert request.body == body
    assert request.status == 200
    assert request.fault is None
    assert started - 1 <= request.time <= time.time()
    assert request.prompt == body["messages"][1]["content"]
    assert request.answer == json.loads(request.response_content)
    assert request.usage["prompt_tokens"] > 0


@pytest.mark.parametrize(("key", "message"), [(None, "No API key provided"), ("wrong", None)])
def test_a_missing_or_wrong_key_is_refused(
    server: MistralServer, key: str | None, message: str | None
) -> None:
    response = post(server, summarize_body(), key=key)

    assert response.status_code == 401
    assert response.json()["message"] == (message or "Unauthorized")


def test_any_key_is_accepted_without_a_configured_one() -> None:
    with MistralServer() as open_server:
        assert post(open_server, summarize_body(), key="anything").status_code == 200
        assert post(open_server, summarize_body(), key=None).status_code == 401


def test_unknown_paths_and_bodies(server: MistralServer) -> None:
    assert requests.get(server.url + "/v1/models", timeout=5).status_code == 404
    assert post(server, {"no": "messages"}).status_code == 422
    assert len(server.requests) == 2


def test_status_faults_come_in_order_with_headers_and_bodies(server: MistralServer) -> None:
    server.inject(
        status(429, retry_after=7),
        status(400, body={"object": "error", "message": "Invalid model: x"}),
        status(503, headers={"X-Debug": "overloaded"}),
    )

    responses = [post(server, summarize_body()) for _ in range(4)]

    assert [r.status_code for r in responses] == [429, 400, 503, 200]
    assert responses[0].headers["Retry-After"] == "7"
    assert responses[0].json()["type"] == "rate_limited"
    assert responses[1].json()["message"] == "Invalid model: x"
    assert responses[2].headers["X-Debug"] == "overloaded"
    assert [r.fault for r in server.requests] == ["status", "status", "status", None]
    assert server.pending_faults == 0


def test_a_fault_with_match_waits_for_its_request(server: MistralServer) -> None:
    server.inject(status(500, match="Some other paper"), status(503))

    first = post(server, summarize_body())
    second = post(server, summarize_body())

    assert (first.status_code, second.status_code) == (503, 200)
    assert server.pending_faults == 1


def test_delay(server: MistralServer) -> None:
    server.inject(delay(0.6))
    started = time.monotonic()

    with pytest.raises(requests.Timeout):
        post(server, summarize_body(), timeout=0.2)

    assert time.monotonic() - started < 0.5
    assert post(server, summarize_body()).status_code == 200


def test_a_malformed_body(server: MistralServer) -> None:
    server.inject(malformed())

    response = post(server, summarize_body())

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert server.requests[0].usage is None


def test_content_faults(server: MistralServer) -> None:
    server.inject(not_json(), invalid_content(), content('{"summary": "x"}'))

    texts = [
        post(server, summarize_body()).json()["choices"][0]["message"]["content"] for _ in range(3)
    ]

    with pytest.raises(ValueError):
        json.loads(texts[0])
    assert json.loads(texts[1]) == {"summary": None, "translations": ["fr", "es"]}
    assert texts[2] == '{"summary": "x"}'
    assert server.requests[1].usage["completion_tokens"] == len(texts[1].split())


def test_wrong_language_and_overlong_answers(server: MistralServer) -> None:
    server.inject(wrong_language("fr"), wrong_language("es", written_in="de"), overlong(1500))

    english, german, long = (answer_of(post(server, summarize_body())) for _ in range(3))

    assert english["translations"]["fr"] == summary_text(TITLE)
    assert english["translations"]["es"] == translation_text("es", TITLE)
    assert german["translations"]["es"] == translation_text("de", TITLE)
    assert len(long["summary"]) == 1500
    assert long["translations"]["de"] == translation_text("de", TITLE)


def test_the_answers_pass_the_pipelines_checks_for_real_papers(corpus: list[dict]) -> None:
    """For 150 real titles and abstracts: an English summary of 150-400 characters that is no
    copy, and translations the offline detector places in their language."""
    candidates = ("en", "fr", "es", "de")
    for record in corpus[:150]:
        title, abstract = record["title"], record["abstract"]
        summary = summary_text(title)
        assert 150 <= len(summary) <= 400
        assert not problems(
            summary,
            language="en",
            source=abstract,
            min_chars=80,
            max_chars=700,
            candidates=candidates,
        )
        for code in ("fr", "es", "de"):
            text = translation_text(code, title)
            assert len(text) >= 100
            assert not problems(
                text,
                language=code,
                source=abstract,
                min_chars=80,
                max_chars=700,
                candidates=candidates,
            )
    assert set(TRANSLATION_TEMPLATES) >= {"fr", "es", "de", "it"}
