"""Classify my abstract: the champion model's three likeliest arXiv categories for any text."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from app import ui
from app.api import ApiError

MIN_WORDS = 30  # fewer words than this is no abstract
UNSURE = 0.5  # a best fit below this probability is a guess


def render() -> None:
    st.header("Classify my abstract")
    st.caption("Where should this go on arXiv? Paste a title and an abstract, e.g. a draft's.")
    with st.form("classify"):
        title = st.text_input("Title", max_chars=1_000)
        abstract = st.text_area("Abstract", height=220, max_chars=20_000)
        submitted = st.form_submit_button("Classify", type="primary")
    if submitted:
        st.session_state.pop("classified", None)
        if not title.strip() or not abstract.strip():
            st.warning("Enter both a title and an abstract.")
            return
        try:
            found = ui.client().classify(title.strip(), abstract.strip())
            st.session_state["classified"] = (found, abstract)
        except ApiError as exc:
            st.error(exc.detail)
            return
    if "classified" in st.session_state:
        _result(*st.session_state["classified"])


def _result(result: dict[str, Any], abstract: str) -> None:
    best, *others = result["categories"]
    st.subheader(f"Best fit: {best['name']} ({best['category']})")
    words = re.findall(r"[^\W\d_]{2,}", abstract)
    if len(words) < MIN_WORDS:
        st.warning(
            f"This does not read like an abstract ({len(words)} words; arXiv abstracts have "
            "100–300): the categories below are guesses from very little.",
            icon=":material/warning:",
        )
    elif best["probability"] < UNSURE:
        st.warning(
            f"The model is unsure (best fit {ui.percent(best['probability'])}): the text may "
            "span several fields or none it knows.",
            icon=":material/help:",
        )
    for scored in [best, *others]:
        st.progress(
            min(max(scored["probability"], 0.0), 1.0),
            text=f"{scored['name']} ({scored['category']}) — {ui.percent(scored['probability'])}",
        )
    model = result["model"]
    st.caption(f"Model {model['name']} version {model['version']}")
