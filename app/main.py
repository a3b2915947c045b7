"""The Streamlit UI's entry point: `streamlit run app/main.py`; views are picked by `?page=`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the project root holding the package.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from app import author, browse, classify, dashboard, health, library, paper, ui  # noqa: E402
from app.api import ApiError, ApiUnavailable  # noqa: E402

RENDER = {
    "browse": browse.render,
    "paper": paper.render,
    "author": author.render,
    "library": library.render,
    "classify": classify.render,
    "dashboard": dashboard.render,
    "health": health.render,
}

st.set_page_config(page_title="arXiv-kedro", page_icon=":material/article:", layout="wide")
# Streamlit forgets a widget's value while its view is not shown; re-assigning keeps it.
for key in browse.STATE_KEYS:
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]
if "view" not in st.session_state:
    st.session_state["view"] = ui.current_view()

with st.sidebar:
    st.title("arXiv-kedro")
    st.radio(
        "View", list(ui.VIEWS), format_func=ui.VIEWS.get, key="view", on_change=ui.view_selected
    )

try:
    RENDER[st.session_state["view"]]()
except ApiUnavailable as exc:
    st.error(str(exc), icon=":material/cloud_off:")
except ApiError as exc:
    st.error(exc.detail)
