"""The retry policy both HTTP clients follow (`arxiv_kedro.retry.Backoff`)."""

from __future__ import annotations

import pytest

from arxiv_kedro.retry import Backoff, GiveUp


def test_waits_double_with_at_most_a_quarter_of_jitter_and_stay_bounded() -> None:
    policy = Backoff(max_retries=6, base_seconds=2.0, max_wait_seconds=30.0)

    waits = [policy.wait(attempt) for attempt in range(6)]

    for attempt, wait in enumerate(waits[:4]):  # 2, 4, 8, 16 s (+ up to 25 %)
        assert 2.0 * 2**attempt <= wait <= 2.5 * 2**attempt
    assert waits[4:] == [30.0, 30.0]  # 32 s and more: capped


def test_retry_after_is_obeyed_as_given_never_shortened() -> None:
    policy = Backoff(max_wait_seconds=60.0)

    assert policy.wait(0, retry_after=45.5) == 45.5
    assert policy.wait(3, retry_after=0.0) == 0.0
    with pytest.raises(GiveUp, match="the server asks to wait 61 s, more than the 60 s allowed"):
        policy.wait(0, retry_after=61.0)


def test_gives_up_after_max_retries() -> None:
    policy = Backoff(max_retries=2)

    policy.wait(1)
    with pytest.raises(GiveUp, match="gave up after 3 attempts"):
        policy.wait(2)
