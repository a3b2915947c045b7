"""Dashboard: what the store holds, how fast papers arrive, and how good the champion model is."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app import ui

# The spans of papers per day the dashboard offers (`?range=`), in days up to the newest paper.
RANGES = {"30 days": 30, "90 days": 90, "1 year": 365, "All": 20_000}
DEFAULT_RANGE = "90 days"
NOT_EVALUATED = "not evaluated (no held-out papers)"
STALE_DAYS = 3  # arXiv announces every weekday: more than a long weekend without papers is odd
TOP_CATEGORIES = 8  # more colours than this make a stacked chart unreadable: the rest is "other"
LABELS = alt.Axis(labelLimit=280)  # category names are long; vega cuts labels at 180 px
BOTTOM = {"orient": "bottom", "columns": 4}  # legends below: half-width charts keep their width
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "macro_f1": "Macro F1",
    "top3_accuracy": "Top-3 accuracy",
    "ece": "Calibration error (ECE)",
}


def render() -> None:
    title, refresh = st.columns([6, 1], vertical_alignment="bottom")
    title.header("Dashboard")
    refresh.button("Refresh", icon=":material/refresh:", on_click=_refresh, width="stretch")
    chosen = st.query_params.get("range", DEFAULT_RANGE)
    chosen = chosen if chosen in RANGES else DEFAULT_RANGE
    stats = ui.stats(RANGES[chosen])
    categories = ui.categories()
    _totals(stats)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Papers per day")
        _range_control(chosen)
        _papers_per_day(stats["papers_per_day"], ui.category_names())
    with right:
        st.subheader("Papers per category")
        _papers_per_category(categories)
    _model(stats.get("model"))


def _range_control(chosen: str) -> None:
    """The range picker, showing the URL's range: it takes it when the URL changed under it
    (Back, a link, a reload) or it was emptied (clicking the chosen range again)."""
    state = st.session_state
    if state.get("dashboard_range_url") != chosen or not state.get("dashboard_range"):
        state["dashboard_range"] = state["dashboard_range_url"] = chosen
    picked = st.segmented_control(
        "Range (up to the newest paper)", list(RANGES), key="dashboard_range"
    )
    if picked != chosen:
        if picked:
            st.query_params["range"] = picked
        st.rerun()


def _refresh() -> None:
    """Forget the cached counts, e.g. right after a pipeline run."""
    ui.stats.clear()
    ui.categories.clear()


def _totals(stats: dict[str, Any]) -> None:
    columns = st.columns(4)
    for column, (label, key) in zip(
        columns,
        [("Papers", "papers"), ("Summaries", "summaries"), ("Predictions", "predictions"),
         ("Quarantined", "quarantined")],
        strict=True,
    ):  # fmt: skip
        column.metric(label, f"{stats[key]:,}")
    facts = [f"Newest paper published {ui.day(stats.get('latest_published'))}"]
    run = stats.get("last_ingestion")
    if run:
        facts.append(
            f"last ingestion {run['status']} {ui.day(run.get('finished_at'))}: "
            f"{run.get('new', 0):,} new, {run.get('updated', 0):,} updated"
        )
    st.caption("; ".join(facts))
    latest, finished = stats.get("latest_published"), (run or {}).get("finished_at")
    if latest and finished:
        lag = pd.Timestamp(finished) - pd.Timestamp(latest)
        if lag > pd.Timedelta(days=STALE_DAYS):
            st.warning(
                f"The newest paper is {lag.days} days older than the last ingestion: the "
                "ingestion may be fetching nothing new (check its windows and the source).",
                icon=":material/schedule:",
            )


def _papers_per_day(rows: list[dict[str, Any]], names: dict[str, str]) -> None:
    if not rows:
        st.info("No papers yet: run the ingestion pipeline (`make run`).")
        return
    frame = pd.DataFrame(rows)
    top = frame.groupby("category")["papers"].sum().nlargest(TOP_CATEGORIES).index
    frame["category"] = frame["category"].where(frame["category"].isin(top), "other")
    frame = frame.groupby(["day", "category"], as_index=False)["papers"].sum()
    frame["name"] = frame["category"].map(lambda c: names.get(c, c))
    # Each bar spans most of its day: on a time axis bars have a fixed width, and 90 overlap.
    frame["start"] = pd.to_datetime(frame["day"])
    frame["end"] = frame["start"] + pd.Timedelta(hours=18)
    first, last = frame["start"].min(), frame["start"].max()
    # Over more than a year, days without the year would be ambiguous.
    dates = "%d %b" if last - first <= pd.Timedelta(days=366) else "%b %Y"
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("start:T", title=None, axis=alt.Axis(format=dates)),
            x2="end:T",
            y=alt.Y("sum(papers):Q", title="papers"),
            color=alt.Color(
                "category:N", title=None, sort=[*top, "other"], legend=alt.Legend(**BOTTOM)
            ),
            tooltip=["day:N", "category:N", "name:N", "papers:Q"],
        )
        .properties(height=320)
    )
    st.altair_chart(chart, width="stretch")
    st.caption(
        f"{ui.day(first.isoformat())} – {ui.day(last.isoformat())}: "
        f"{frame['papers'].sum():,} papers by day of publication (UTC)"
    )


def _papers_per_category(categories: list[dict[str, Any]]) -> None:
    if not categories:
        st.info("No categories yet: run the ingestion pipeline (`make run`).")
        return
    # The API lists by primary papers; the bars stack cross-lists too: longest bars first.
    frame = pd.DataFrame(categories)
    frame = frame.assign(total=frame["papers"] + frame["cross_listed"]).nlargest(15, "total")
    frame = _labelled(frame)
    long = frame.melt(
        id_vars=["label", "category"],
        value_vars=["papers", "cross_listed"],
        var_name="kind",
        value_name="count",
    )
    long["kind"] = long["kind"].map({"papers": "primary", "cross_listed": "cross-listed"})
    chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("sum(count):Q", title="papers"),
            y=alt.Y("label:N", title=None, sort=list(frame["label"]), axis=LABELS),
            color=alt.Color(
                "kind:N", title=None, sort=["primary", "cross-listed"], legend=alt.Legend(**BOTTOM)
            ),
            tooltip=["label:N", "kind:N", "count:Q"],
        )
        .properties(height=alt.Step(22))
    )
    st.altair_chart(chart, width="stretch")


def _model(model: dict[str, Any] | None) -> None:
    st.subheader("Champion model")
    if model is None:
        st.info("No model yet: train one with `kedro run --pipeline training`.")
        return
    trained = f", trained on papers up to {ui.day(model['trained_through'])}"
    st.caption(
        f"{model['name']} version {model['version']}"
        + (trained if model.get("trained_through") else "")
    )
    # The evaluation also reports counts and speed (papers, predict_papers_per_second): scores only.
    metrics = model.get("metrics") or {}
    scores = {key: metrics[key] for key in METRIC_LABELS if key in metrics}
    if scores:
        for column, (key, value) in zip(st.columns(len(scores)), scores.items(), strict=True):
            column.metric(METRIC_LABELS[key], f"{value:.3f}")
    per_class = model.get("per_class") or []
    if not per_class:
        return
    st.markdown("**F1 per category**")
    frame = _labelled(pd.DataFrame(per_class))
    frame["evaluated"] = frame["support"] > 0
    # Every class in its row, best first; one without held-out papers has no score: its row
    # says "not evaluated" instead of an empty bar that reads as a failure.
    order = frame.sort_values(["evaluated", "f1"], ascending=False)["label"]
    rows = alt.Chart(frame).encode(y=alt.Y("label:N", title=None, sort=list(order), axis=LABELS))
    bars = (
        rows.transform_filter("datum.evaluated")
        .mark_bar()
        .encode(
            x=alt.X(
                "f1:Q",
                title="F1",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(values=[i / 10 for i in range(11)], format=".1f"),
            ),
            tooltip=["label:N", "precision:Q", "recall:Q", "f1:Q", "support:Q"],
        )
    )
    unevaluated = (
        rows.transform_filter("!datum.evaluated")
        .mark_text(align="left", dx=4, fontStyle="italic", color="gray")
        .encode(x=alt.datum(0), text=alt.value(NOT_EVALUATED))
    )
    chart = (bars + unevaluated).properties(height=alt.Step(22))
    st.altair_chart(chart, width="stretch")


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """With a `label` column: "Computation and Language (cs.CL)"."""
    return frame.assign(label=frame["name"] + " (" + frame["category"] + ")")
