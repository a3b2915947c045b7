"""The monitoring store on SQLite and PostgreSQL: a window's papers with a model's predictions,
the even sample of a large reference, the runs' time series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.relational.ml import PREDICTION_FRAME, MlStore
from arxiv_kedro.stores.relational.monitoring import MonitoringStore
from tests.stores.test_relational import PUBLISHED, make_paper, write

DAY = timedelta(days=1)


def fill(store: Database, n: int) -> list[str]:
    """`n` papers, one a day from PUBLISHED; the model `m` labeled the even ones."""
    ids = [f"2503.{i:05}" for i in range(1, n + 1)]
    write(store, *(make_paper(a, published=PUBLISHED + i * DAY) for i, a in enumerate(ids)))
    with store.engine.connect() as conn:
        stored = pd.read_sql("SELECT id, arxiv_id, content_hash FROM papers ORDER BY id", conn)
    labeled = stored.iloc[::2]
    frame = pd.DataFrame(
        {
            "paper_id": labeled.id, "model_name": "m", "model_version": "1",
            "content_hash": labeled.content_hash, "label": "cs.CL", "probability": 0.9,
            "label_2": "cs.AI", "probability_2": 0.05, "label_3": "cs.LG", "probability_3": 0.05,
        }
    )  # fmt: skip
    MlStore(store).save_predictions(frame[list(PREDICTION_FRAME)])
    return ids


def test_a_window_with_its_predictions(store: Database) -> None:
    ids = fill(store, 10)
    monitoring = MonitoringStore(store)

    window = monitoring.window(PUBLISHED + 2 * DAY, PUBLISHED + 6 * DAY, "m")

    assert window.arxiv_id.tolist() == ids[2:6]
    assert window.label.notna().tolist() == [True, False, True, False]
    assert (window.published.dt.tz == UTC) and monitoring.newest_published() == PUBLISHED + 9 * DAY
    assert monitoring.window(PUBLISHED, PUBLISHED + 10 * DAY, "other").label.isna().all()


def test_a_large_window_is_sampled_evenly_to_exactly_the_limit(store: Database) -> None:
    ids = fill(store, 10)

    sample = MonitoringStore(store).window(PUBLISHED, PUBLISHED + 10 * DAY, "m", limit=4)

    # Of n in id order, the i-th (from 1) is kept when floor(i * limit / n) steps up.
    expected = [a for i, a in enumerate(ids, 1) if (i * 4) // 10 != ((i - 1) * 4) // 10]
    assert sample.arxiv_id.tolist() == expected == [ids[2], ids[4], ids[7], ids[9]]
    assert len(MonitoringStore(store).window(PUBLISHED, PUBLISHED + 10 * DAY, "m", 20)) == 10


def test_runs_are_upserted_and_listed_newest_first(store: Database) -> None:
    monitoring = MonitoringStore(store)
    at = datetime(2026, 4, 30, 20, tzinfo=UTC)
    row = {
        "run_id": "20260430T200000Z", "run_at": at, "model_version": "1",
        "current_from": at - 7 * DAY, "current_to": at, "current_papers": 10,
        "reference_from": at - 90 * DAY, "reference_to": at - 7 * DAY, "reference_papers": 90,
        "accuracy": 0.9, "macro_f1": 0.8, "champion_macro_f1": 0.85, "drift_detected": False,
        "drift_share": 0.1, "text_drift": False, "feed_alarms": 0, "checks_failed": 0,
        "retrain_recommended": False, "reason": "no retraining trigger",
    }  # fmt: skip

    monitoring.save_run(row)
    monitoring.save_run({**row, "run_id": "20260501T200000Z", "run_at": at + DAY})
    monitoring.save_run({**row, "reason": "rerun"})  # the same id: replaced

    runs = monitoring.runs(10)
    assert [r["run_id"] for r in runs] == ["20260501T200000Z", "20260430T200000Z"]
    assert runs[1] == {**row, "reason": "rerun"}
    assert monitoring.runs(1) == runs[:1]
