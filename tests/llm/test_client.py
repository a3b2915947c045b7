"""`LlmClient` against a real local HTTP server speaking Mistral's chat-completion protocol."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest

from arxiv_kedro.coordination.rate_limit import LocalTokenBucket
from arxiv_kedro.datasets.llm_client import LlmClientDataset
from arxiv_kedro.llm import summaries as s
from arxiv_kedro.llm.client import (
    Completion,
    LlmAuthError,
    LlmClient,
    LlmInvalidOutput,
    LlmRequestError,
    LlmUnavailable,
    Usage,
)
from arxiv_kedro.retry import retry_after_seconds
from tests.conftest import free_port
from tests.support.mistral_server import (
    MistralServer,
    content,
    delay,
    invalid_content,
    malformed,
    not_json,
    prompt_messages,
    prompt_tokens,
    status,
    summary_text,
    translation_text,
    word_count,
)

KEY = "sk-test-0123456789abcdef"
BACKOFF = 0.05
TITLE = "Sparse attention for long documents"
ABSTRACT = (
    "We study attention over very long inputs. Our method keeps a small set of global tokens "
    "and attends locally elsewhere. It matches dense attention on three benchmarks while using "
    "a tenth of the memory."
)


def summarize_messages(languages: str = "fr (French), es (Spanish)") -> list[dict[str, str]]:
    values = {
        "title": TITLE,
        "abstract": ABSTRACT,
        "min_chars": 80,
        "max_chars": 700,
        "languages": languages,
    }
    return prompt_messages("summarize", **values)


@pytest.fixture
def server() -> Iterator[MistralServer]:
    with MistralServer(api_key=KEY) as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    """The back-off waits the client asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def make_client(server: MistralServer, waits: list[float]) -> Iterator[Callable[..., LlmClient]]:
    made: list[LlmClient] = []

    def make(api_key: str = KEY, **options) -> LlmClient:
        settings = {
            "server_url": server.url,
            "timeout_seconds": 5.0,
            "max_retries": 3,
            "backoff_seconds": BACKOFF,
            "sleep": waits.append,
            **options,
        }
        client = LlmClient(api_key, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def billed(server: MistralServer) -> Usage:
    total = Usage()
    for request in server.requests:
        if request.status == 200:
            total += Usage(request.usage["prompt_tokens"], request.usage["completion_tokens"])
    return total


# --- success ------------------------------------------------------------------------------


def test_success_returns_the_validated_answer_usage_and_model(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    messages = summarize_messages()

    completion = make_client().complete(messages, s.SummaryAnswer, max_tokens=321)

    assert isinstance(completion, Completion)
    assert completion.value == s.SummaryAnswer(
        summary=summary_text(TITLE),
        translations={"fr": translation_text("fr", TITLE), "es": translation_text("es", TITLE)},
    )
    assert completion.attempts == 1
    assert completion.model == "mistral-small-latest"
    words = sum(word_count(m["content"]) for m in messages)
    assert completion.usage.prompt_tokens == words
    assert completion.usage.completion_tokens == word_count(server.requests[0].response_content)
    assert completion.usage == billed(server)
    assert waits == []
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.authorization == f"Bearer {KEY}"
    assert request.body["model"] == "mistral-small-latest"
    assert request.body["messages"] == messages
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["max_tokens"] == 321
    assert request.body["temperature"] == pytest.approx(0.2)


def test_the_configured_model_is_sent_and_reported(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    completion = make_client(model="mistral-large-latest").complete(
        summarize_messages(), s.SummaryAnswer
    )

    assert server.requests[0].body["model"] == "mistral-large-latest"
    assert completion.model == "mistral-large-latest"


def test_a_json_answer_in_a_markdown_fence_is_accepted(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    server.inject(content('```json\n{"summary": "A fenced answer.", "translations": {}}\n```'))

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert completion.value.summary == "A fenced answer."
    assert completion.attempts == 1


# --- retries --------------------------------------------------------------------------------


def test_429_with_retry_after_waits_what_the_server_asks(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(status(429, retry_after=7))

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert waits == [7.0]
    assert [r.status for r in server.requests] == [429, 200]
    assert completion.attempts == 1  # one answer read; the 429 is a transport-level retry
    assert completion.usage == billed(server)


def test_retry_after_beyond_max_wait_gives_up_instead_of_retrying_early(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    """The server's Retry-After is never shortened (the arXiv client follows the same policy)."""
    server.inject(status(429, retry_after=3600))

    with pytest.raises(LlmUnavailable) as raised:
        make_client(max_wait_seconds=30).complete(summarize_messages(), s.SummaryAnswer)

    assert waits == []
    assert len(server.requests) == 1
    assert raised.value.status == 429
    assert raised.value.reason == (
        "HTTP 429; the server asks to wait 3600 s, more than the 30 s allowed (max_wait_seconds)"
    )


def test_5xx_backs_off_exponentially_then_succeeds(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(status(500), status(503), status(502))

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert [r.status for r in server.requests] == [500, 503, 502, 200]
    assert completion.value.summary == summary_text(TITLE)
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):  # backoff · 2^attempt, plus up to 25 % jitter
        assert BACKOFF * 2**attempt <= wait <= BACKOFF * 2**attempt * 1.25


def test_backoff_is_capped_by_max_wait_seconds(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(status(503), status(503))

    make_client(backoff_seconds=10, max_wait_seconds=12).complete(
        summarize_messages(), s.SummaryAnswer
    )

    assert 10 <= waits[0] <= 12.5
    assert waits[1] == 12


def test_exhausted_retries_raise_unavailable(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(*[status(503)] * 3, status(500))

    with pytest.raises(LlmUnavailable) as raised:
        make_client(max_retries=2).complete(summarize_messages(), s.SummaryAnswer)

    assert len(server.requests) == 3  # max_retries + 1
    assert len(waits) == 2
    assert raised.value.status == 503
    assert raised.value.reason == "HTTP 503; gave up after 3 attempts"
    assert server.pending_faults == 1  # nothing more was asked


def test_a_timeout_is_retried(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(delay(2.0))
    started = time.monotonic()

    completion = make_client(timeout_seconds=0.5).complete(summarize_messages(), s.SummaryAnswer)

    assert time.monotonic() - started < 1.9  # gave up on the slow answer, did not wait for it
    assert len(server.requests) == 2
    assert len(waits) == 1
    assert completion.value.summary == summary_text(TITLE)


def test_timeouts_every_time_raise_unavailable(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    server.inject(delay(1.5), delay(1.5))

    with pytest.raises(LlmUnavailable) as raised:
        make_client(timeout_seconds=0.3, max_retries=1).complete(
            summarize_messages(), s.SummaryAnswer
        )

    assert "Timeout" in raised.value.reason
    assert raised.value.reason.endswith("after 2 attempts")
    assert raised.value.status is None
    assert len(server.requests) == 2


def test_a_refused_connection_is_retried_then_unavailable(waits: list[float]) -> None:
    client = LlmClient(
        KEY,
        server_url=f"http://127.0.0.1:{free_port()}",
        max_retries=2,
        backoff_seconds=BACKOFF,
        sleep=waits.append,
    )
    try:
        with pytest.raises(LlmUnavailable, match="after 3 attempts"):
            client.complete(summarize_messages(), s.SummaryAnswer)
    finally:
        client.close()
    assert len(waits) == 2


# --- errors that are not retried ------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
def test_auth_errors_stop_at_once_without_showing_the_key(
    server: MistralServer,
    make_client: Callable[..., LlmClient],
    waits: list[float],
    code: int,
) -> None:
    server.inject(status(code))

    with pytest.raises(LlmAuthError) as raised:
        make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert len(server.requests) == 1
    assert waits == []
    assert raised.value.status == code
    assert f"HTTP {code}" in raised.value.reason
    assert "MISTRAL_API_KEY" in raised.value.reason
    assert KEY not in str(raised.value)
    assert KEY not in repr(raised.value)
    assert KEY not in str(raised.value.__cause__)


def test_a_wrong_key_is_refused_by_the_server(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    with pytest.raises(LlmAuthError):
        make_client(api_key="sk-revoked").complete(summarize_messages(), s.SummaryAnswer)

    assert server.requests[0].authorization == "Bearer sk-revoked"
    assert server.requests[0].status == 401


def test_an_empty_key_is_refused_before_any_request() -> None:
    with pytest.raises(LlmAuthError, match="MISTRAL_API_KEY"):
        LlmClient("")


def test_the_client_repr_does_not_show_the_key(make_client: Callable[..., LlmClient]) -> None:
    client = make_client()

    assert KEY not in repr(client)
    assert "mistral-small-latest" in repr(client)


def test_400_raises_request_error_with_the_servers_reason(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(status(400, body={"object": "error", "message": "Invalid model: nope"}))

    with pytest.raises(LlmRequestError) as raised:
        make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert raised.value.reason == "HTTP 400: Invalid model: nope"
    assert raised.value.status == 400
    assert len(server.requests) == 1
    assert waits == []


@pytest.mark.parametrize(
    ("code", "body", "reason"),
    [
        (404, '{"detail": "Not Found"}', "HTTP 404: Not Found"),
        (413, "request too large", "HTTP 413: request too large"),
        (422, '{"detail": [{"msg": "bad"}]}', "HTTP 422: [{'msg': 'bad'}]"),
    ],
)
def test_other_4xx_are_request_errors(
    server: MistralServer,
    make_client: Callable[..., LlmClient],
    code: int,
    body: str,
    reason: str,
) -> None:
    server.inject(status(code, body=body))

    with pytest.raises(LlmRequestError) as raised:
        make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert raised.value.reason == reason
    assert len(server.requests) == 1


# --- answers that are not what was asked ----------------------------------------------------


def test_a_malformed_200_body_is_asked_once_more(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    """The SDK cannot read the envelope (a 2xx): like an invalid answer, asked once more —
    not a server error to back off from, and never a success."""
    server.inject(malformed())

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert completion.attempts == 2
    assert len(server.requests) == 2
    assert waits == []


def test_a_malformed_200_body_twice_is_invalid_output(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(malformed(), malformed())

    with pytest.raises(LlmInvalidOutput) as raised:
        make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert raised.value.reason.startswith("unreadable response: ")
    assert KEY not in raised.value.reason
    assert raised.value.attempts == 2
    assert len(server.requests) == 2
    assert waits == []


@pytest.mark.parametrize("fault", [not_json, invalid_content], ids=["prose", "schema"])
def test_an_invalid_answer_is_asked_once_more(
    server: MistralServer,
    make_client: Callable[..., LlmClient],
    waits: list[float],
    fault: Callable[[], object],
) -> None:
    server.inject(fault())

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert completion.attempts == 2
    assert completion.value.summary == summary_text(TITLE)
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body  # the same question again
    assert completion.usage == billed(server)  # both answers were paid for
    assert completion.usage.prompt_tokens == 2 * prompt_tokens(server.requests[0].body)
    assert waits == []


def test_an_invalid_answer_twice_raises_invalid_output(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    server.inject(not_json(), invalid_content(), not_json())

    with pytest.raises(LlmInvalidOutput) as raised:
        make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert raised.value.reason.startswith("invalid structured answer: ")
    assert len(server.requests) == 2
    assert server.pending_faults == 1


def test_a_retry_inside_the_second_attempt_still_counts_two_attempts(
    server: MistralServer, make_client: Callable[..., LlmClient], waits: list[float]
) -> None:
    server.inject(not_json(), status(503))

    completion = make_client().complete(summarize_messages(), s.SummaryAnswer)

    assert completion.attempts == 2
    assert [r.status for r in server.requests] == [200, 503, 200]
    assert len(waits) == 1
    assert completion.usage == billed(server)


# --- rate limiting --------------------------------------------------------------------------


class CountingLimiter:
    def __init__(self, server: MistralServer):
        self.server, self.seen = server, []

    def acquire(self) -> float:
        self.seen.append(len(self.server.requests))  # requests already made when called
        return 0.0


def test_the_rate_limiter_is_asked_before_every_request(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    limiter = CountingLimiter(server)
    server.inject(status(429, retry_after=0), not_json(), status(500))
    client = make_client(rate_limiter=limiter)

    client.complete(summarize_messages(), s.SummaryAnswer)

    assert len(server.requests) == 4
    assert limiter.seen == [0, 1, 2, 3]


def test_a_token_bucket_spaces_the_requests(
    server: MistralServer, make_client: Callable[..., LlmClient]
) -> None:
    client = make_client(rate_limiter=LocalTokenBucket(rate=20))
    started = time.monotonic()

    for _ in range(4):
        client.complete(summarize_messages(), s.SummaryAnswer)

    # one token at hand, then one every 1/20 s: the 4th request waits at least 3/20 s
    assert time.monotonic() - started >= 0.15
    assert len(server.requests) == 4


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None), ("", None)],
)
def test_retry_after_seconds_reads_delta_seconds(value: str, expected: float | None) -> None:
    assert retry_after_seconds(httpx2.Headers({"Retry-After": value})) == expected


def test_retry_after_seconds_reads_an_http_date() -> None:
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    past = format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)

    assert 27 <= retry_after_seconds(httpx2.Headers({"Retry-After": future})) <= 30
    assert retry_after_seconds(httpx2.Headers({"Retry-After": past})) == 0.0


def test_retry_after_seconds_without_the_header() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds(httpx2.Headers({})) is None
    assert retry_after_seconds({"retry-after": "4"}) == 4.0
    assert retry_after_seconds(httpx2.Headers({"Retry-After": "Mon, 99 Foo 2026"})) is None


def test_usage_adds_and_costs_per_million_tokens() -> None:
    usage = Usage(1_000_000, 250_000) + Usage(500_000, 750_000)

    assert usage == Usage(1_500_000, 1_000_000)
    assert usage.cost({"input": 0.1, "output": 0.3}) == pytest.approx(0.45)
    assert usage.cost({"input": 2.0}) == pytest.approx(3.0)
    assert usage.cost({}) == 0.0
    assert Usage().cost({"input": 5.0, "output": 5.0}) == 0.0


# --- the catalog dataset --------------------------------------------------------------------


def test_the_dataset_without_a_key_loads_none() -> None:
    dataset = LlmClientDataset(api_key="", server_url="http://127.0.0.1:9")

    assert dataset.load() is None
    assert dataset._describe()["api_key"] == "(none: offline)"


def test_the_dataset_with_a_key_talks_to_the_server(server: MistralServer) -> None:
    dataset = LlmClientDataset(
        api_key=KEY, server_url=server.url, model="mistral-small-latest", requests_per_second=50
    )

    client = dataset.load()
    try:
        completion = client.complete(summarize_messages(), s.SummaryAnswer)
    finally:
        client.close()

    assert completion.value.summary == summary_text(TITLE)
    assert server.requests[0].authorization == f"Bearer {KEY}"
    described = dataset._describe()
    assert KEY not in str(described)
    assert KEY not in repr(dataset)
    assert described == {
        "model": "mistral-small-latest",
        "server_url": server.url,
        "api_key": "***",
    }
