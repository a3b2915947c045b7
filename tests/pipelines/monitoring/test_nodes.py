"""The monitoring nodes on real papers (the daily snapshot of ../shared/data): drift between
windows of the same months and of months apart, feed alarms for an emptied category and a stale
feed and none for a weekend, the retrain decision, and clear errors for bad windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from arxiv_kedro.pipelines.monitoring.feed import announcement_days
from arxiv_kedro.pipelines.monitoring.nodes import (
    check_data_quality,
    check_drift,
    check_feed,
    decide,
    measure_live_quality,
    select_papers,
)
from tests.test_kedro_run import PROJECT_ROOT

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters_monitoring.yml").read_text())[
    "monitoring"
]
SAMPLE = 1500  # papers per side of a drift comparison


@pytest.fixture(scope="module")
def papers(daily_snapshot: Path) -> pd.DataFrame:
    """Every paper of the snapshot as the store's window reads it; its prediction is arXiv's
    category with a probability drawn alike for every paper (drift must come from the texts)."""
    frame = pd.read_json(daily_snapshot, lines=True)
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "arxiv_id": frame["id"].astype(str),
            "title": frame.title,
            "abstract": frame.abstract,
            "category": frame.categories.str.split().str[0],
            "published": pd.to_datetime(frame.update_date, utc=True),
            "model_version": "1",
            "label": frame.categories.str.split().str[0],
            "probability": rng.uniform(0.4, 1.0, len(frame)),
            "label_2": "x",
            "label_3": "y",
        }
    )


def between(papers: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return papers[(papers.published >= start) & (papers.published < end)]


def context(start: str, end: str, as_of: str | None = None) -> dict[str, Any]:
    window = {"from": f"{start}T00:00:00+00:00", "to": f"{end}T00:00:00+00:00"}
    return {
        "run_id": "20260101T000000Z",
        "run_at": "2026-01-01T00:00:00+00:00",
        "status": "ok",
        "model": {"name": "m", "version": "1", "macro_f1": 0.8, "trained_through": None},
        "current": window,
        "reference": window,
        "as_of": as_of or window["to"],
    }


# --- drift ------------------------------------------------------------------------------------


def test_papers_of_the_same_months_do_not_drift(papers: pd.DataFrame) -> None:
    months = between(papers, "2025-05-01", "2025-07-01")
    reference = months.iloc[0::2].sample(SAMPLE, random_state=1)
    current = months.iloc[1::2].sample(SAMPLE, random_state=2)

    report, drift = check_drift(context("2025-05-01", "2025-07-01"), reference, current, PARAMS)

    assert "Dataset Drift" in report["html"] and report["json"]["tests"]
    assert not drift["detected"] and not drift["text_drift"], drift
    assert not drift["columns"]["title"]["drifted"]
    assert not drift["columns"]["abstract"]["drifted"]


def test_papers_of_months_later_drift_and_name_their_words(papers: pd.DataFrame) -> None:
    reference = between(papers, "2025-05-01", "2025-07-01").sample(SAMPLE, random_state=1)
    current = between(papers, "2026-03-01", "2026-05-01").sample(SAMPLE, random_state=2)

    _, drift = check_drift(context("2026-03-01", "2026-05-01"), reference, current, PARAMS)

    assert drift["text_drift"] and drift["detected"], drift
    abstract = drift["columns"]["abstract"]
    assert abstract["drifted"] and abstract["score"] > abstract["threshold"]
    words = " ".join(current.abstract).lower()
    assert abstract["words"]["current"] and all(w in words for w in abstract["words"]["current"])


def test_nothing_to_compare_skips_the_report() -> None:
    report, drift = check_drift({"status": "no champion"}, pd.DataFrame(), pd.DataFrame(), PARAMS)
    assert report == {} and not drift["detected"] and drift["columns"] == {}


# --- feed -------------------------------------------------------------------------------------


def feed_of(papers: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return between(papers, start, end)[["published", "category"]]


def test_a_normal_fortnight_raises_no_feed_alarm(papers: pd.DataFrame) -> None:
    """(The recorded feed has real gaps too: no paper at all on 2025-09-02, cs.AI, cs.LG and
    eess.IV gone from 2025-06-12 on; the monitor flags those days.)"""
    feed = feed_of(papers, "2025-04-01", "2025-05-31")

    health = check_feed(context("2025-05-19", "2025-05-31"), feed, PARAMS)

    assert health["alarms"] == []
    days = [19, 20, 21, 22, 23, 26, 27, 28, 29, 30]  # Memorial Day is an announcement day
    assert list(health["days"]) == [f"2025-05-{d}" for d in days]
    assert sum(health["days"].values()) == len(feed_of(papers, "2025-05-19", "2025-05-31"))


def test_a_category_emptied_for_a_day_raises_the_feed_alarm(papers: pd.DataFrame) -> None:
    feed = feed_of(papers, "2025-04-01", "2025-05-31")
    emptied = (feed.category == "cs.CL") & (feed.published.dt.strftime("%F") == "2025-05-28")
    assert emptied.sum() > 20

    health = check_feed(context("2025-05-19", "2025-05-31"), feed[~emptied], PARAMS)

    [alarm] = health["alarms"]
    assert (alarm["kind"], alarm["category"], alarm["day"], alarm["papers"]) == (
        "category",
        "cs.CL",
        "2025-05-28",
        0,
    )
    assert alarm["trailing_median"] >= PARAMS["feed"]["min_median"]


def test_a_weekend_raises_no_alarm(papers: pd.DataFrame) -> None:
    """Saturday and Sunday: no announcement, so no empty category nor stale feed."""
    feed = feed_of(papers, "2025-04-01", "2025-05-26")

    health = check_feed(context("2025-05-24", "2025-05-26"), feed, PARAMS)

    assert health == {"alarms": [], "days": {}}


def test_no_paper_for_two_announcement_days_is_a_stale_feed(papers: pd.DataFrame) -> None:
    """The newest papers are of Friday 2025-05-23; on Wednesday morning (US Eastern) Monday's
    and Tuesday's announcements are missing."""
    feed = feed_of(papers, "2025-04-01", "2025-05-24")

    on_tuesday = check_feed(context("2025-05-19", "2025-05-24", "2025-05-27T16:00Z"), feed, PARAMS)
    on_wednesday = check_feed(
        context("2025-05-19", "2025-05-24", "2025-05-28T16:00Z"), feed, PARAMS
    )

    assert on_tuesday["alarms"] == []
    [stale] = on_wednesday["alarms"]
    assert stale["kind"] == "stale" and "2 announcement days" in stale["message"]


def test_announcement_days_skip_weekends_holidays_and_the_cutoff() -> None:
    published = pd.Series(
        pd.to_datetime(
            [
                "2025-06-13T17:00:00Z",  # Friday 13:00 EDT: Friday's announcement
                "2025-06-13T19:00:00Z",  # Friday 15:00 EDT, after the cutoff: Monday's
                "2025-06-14T12:00:00Z",  # Saturday: Monday's
                "2025-12-24T20:00:00Z",  # after the cutoff before a holiday: the 26th
            ],
            utc=True,
        )
    )

    days = announcement_days(published, holidays=["2025-12-25"])

    assert [str(d) for d in days] == ["2025-06-13", "2025-06-16", "2025-06-16", "2025-12-26"]


# --- live quality, data quality, the decision -------------------------------------------------


def test_live_quality_only_scores_the_champions_predictions(papers: pd.DataFrame) -> None:
    current = between(papers, "2025-06-02", "2025-06-14").copy()
    current.loc[current.index[:100], "model_version"] = "0"  # an older champion's
    params = {"quality": PARAMS["quality"]}

    quality = measure_live_quality(context("2025-06-02", "2025-06-14"), current, params)

    assert (quality["papers"], quality["unlabeled"]) == (len(current) - 100, 100)
    assert quality["accuracy"] == quality["top3"] == 1.0  # the label is arXiv's category
    assert quality["macro_f1_change"] == pytest.approx(1.0 - 0.8)


def test_data_quality_counts_empty_and_duplicate_abstracts(papers: pd.DataFrame) -> None:
    current = between(papers, "2025-06-02", "2025-06-14").copy()
    current.loc[current.index[:10], "abstract"] = " "
    current.loc[current.index[10:15], "abstract"] = current.abstract.iloc[20]
    ctx = context("2025-06-02", "2025-06-14") | {"ingested": {"fetched": 200, "quarantined": 3}}

    data = check_data_quality(ctx, current)

    assert data["empty_abstract"] == pytest.approx(10 / len(current))
    assert data["duplicate_abstract"] == pytest.approx(5 / len(current))
    assert data["missing_field"] == pytest.approx(10 / len(current))
    assert data["quarantine_rate"] == pytest.approx(3 / 200)


class History:
    """The runs recorded before (pure unit test: the real table is tested in tests/serving)."""

    def __init__(self, text_drift: list[bool]):
        self.runs = [{"text_drift": drifted} for drifted in text_drift]

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return self.runs[:limit]


def verdict(change: float, text_drift: bool, history: list[bool]) -> dict[str, Any]:
    drift = {"detected": text_drift, "share": 0.5, "columns": {}, "text_drift": text_drift}
    quality = {"papers": 1000, "macro_f1": 0.8 + change, "champion_macro_f1": 0.8,
               "macro_f1_change": change}  # fmt: skip
    data = {"empty_abstract": 0.0, "duplicate_abstract": 0.0, "missing_field": 0.0,
            "quarantine_rate": 0.0}  # fmt: skip
    ctx = context("2025-06-02", "2025-06-14")
    return decide(ctx, drift, quality, data, {"alarms": []}, History(history), PARAMS)


def test_retraining_is_recommended_for_a_macro_f1_drop_or_lasting_text_drift() -> None:
    assert not verdict(-0.02, False, [])["retrain_recommended"]
    dropped = verdict(-0.03, False, [])
    assert dropped["retrain_recommended"] and "live macro-F1" in dropped["reason"]
    assert not verdict(0.0, True, [True])["retrain_recommended"]  # two runs only
    assert not verdict(0.0, True, [True, False])["retrain_recommended"]
    lasting = verdict(0.0, True, [True, True])
    assert lasting["retrain_recommended"] and "3 consecutive runs" in lasting["reason"]
    checks = {c["name"]: c for c in dropped["checks"]}
    assert checks["live macro-F1 drop"] == {
        "name": "live macro-F1 drop",
        "passed": False,
        "value": pytest.approx(0.03),
        "threshold": PARAMS["quality"]["max_macro_f1_drop"],
    }


def test_an_explicit_window_needs_both_ends() -> None:
    params = {**PARAMS, "current_from": "2025-06-01"}
    with pytest.raises(ValueError, match=r"set both monitoring\.current_from and"):
        select_papers(None, None, params)
