"""Health: the champion's live quality and the drift over time, today's alarms, and the newest
monitoring run's Evidently report."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from app import ui
from app.api import ApiError

REPORT_HEIGHT = 1100  # px; the report scrolls inside its frame


@st.cache_data(ttl=30, show_spinner=False)
def latest() -> dict[str, Any] | None:
    try:
        return ui.client().monitoring_latest()
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


@st.cache_data(ttl=30, show_spinner=False)
def runs() -> list[dict[str, Any]]:
    return ui.client().monitoring_runs()


@st.cache_data(ttl=300, show_spinner=False)
def report(run_id: str) -> str:
    return ui.client().monitoring_report(run_id)


def render() -> None:
    title, refresh = st.columns([6, 1], vertical_alignment="bottom")
    title.header("Health")
    refresh.button("Refresh", icon=":material/refresh:", on_click=_refresh, width="stretch")
    found = latest()
    if found is None:
        st.info(
            "No monitoring run yet: it runs after inference (`make run`) once a champion exists, "
            "or `kedro run --pipeline monitoring`."
        )
        return
    _summary(found)
    _alarms(found)
    left, right = st.columns(2, gap="large")
    history = pd.DataFrame(runs())
    with left:
        st.subheader("Live macro-F1")
        _quality_chart(history)
    with right:
        st.subheader("Drift")
        _drift_chart(history)
    st.subheader("Checks")
    st.dataframe(pd.DataFrame(found["checks"]), hide_index=True, width="stretch")
    st.subheader("Evidently report")
    st.caption(f"Run {found['run_id']}: current window against the reference (the champion's)")
    components.html(report(found["run_id"]), height=REPORT_HEIGHT, scrolling=True)


def _refresh() -> None:
    latest.clear()
    runs.clear()


def _summary(found: dict[str, Any]) -> None:
    quality, window = found["live_quality"], found["window"]
    columns = st.columns(4)
    columns[0].metric("Papers monitored", f"{window['papers']:,}")
    columns[1].metric(
        "Live macro-F1",
        _score(quality["macro_f1"]),
        delta=None if quality["macro_f1_change"] is None else f"{quality['macro_f1_change']:+.3f}",
        help="Against arXiv's primary categories; the change is since the champion's evaluation",
    )
    columns[2].metric("Accuracy", _score(quality["accuracy"]))
    columns[3].metric("Drifted columns", f"{found['drift']['share']:.0%}")
    st.caption(
        f"Window {ui.day(window['from'])} – {ui.day(window['to'])}, run {ui.day(found['run_at'])}"
    )


def _alarms(found: dict[str, Any]) -> None:
    if found["retrain_recommended"]:
        st.warning(f"Retraining recommended: {found['reason']}", icon=":material/model_training:")
    alarms = [a["message"] for a in found["feed"]["alarms"]]
    failed = [
        f"{c['name']}: {_score(c['value'])} (threshold {c['threshold']:g})"
        for c in found["checks"]
        if not c["passed"] and c["name"] != "feed alarms"
    ]
    if not alarms and not failed:
        st.success("No alarm: every check passed", icon=":material/check_circle:")
    for message in alarms:
        st.error(f"Feed: {message}", icon=":material/rss_feed:")
    for message in failed:
        st.warning(message, icon=":material/warning:")


def _quality_chart(history: pd.DataFrame) -> None:
    frame = history[["run_at", "macro_f1", "champion_macro_f1"]].melt(
        "run_at", var_name="series", value_name="macro-F1"
    )
    frame["series"] = frame["series"].map(
        {"macro_f1": "live", "champion_macro_f1": "champion's evaluation"}
    )
    chart = (
        alt.Chart(frame.dropna())
        .mark_line(point=True)
        .encode(
            x=alt.X("run_at:T", title="run", axis=alt.Axis(format="%d %b %H:%M")),
            y=alt.Y("macro-F1:Q", scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", legend=alt.Legend(orient="bottom")),
        )
    )
    st.altair_chart(chart, width="stretch")


def _drift_chart(history: pd.DataFrame) -> None:
    chart = (
        alt.Chart(history)
        .mark_line(point=True)
        .encode(
            x=alt.X("run_at:T", title="run", axis=alt.Axis(format="%d %b %H:%M")),
            y=alt.Y("drift_share:Q", title="drifted columns", scale=alt.Scale(domain=[0, 1])),
            tooltip=["run_at:T", "drift_share:Q", "text_drift:N", "feed_alarms:Q"],
        )
    )
    st.altair_chart(chart, width="stretch")


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
