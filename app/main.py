"""The Streamlit UI's entry point: `streamlit run app/main.py`. One page per view, each at its own
URL path (`/paper?id=…`; browsing at `/`), routed by `st.navigation`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run app/main.py` puts app/ on sys.path, not the project root holding the package.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from app import ui  # noqa: E402
from app.api import ApiError, ApiUnavailable  # noqa: E402

st.set_page_config(page_title="arXiv-kedro", page_icon=":material/article:", layout="wide")
pages = {view: ui.page(view) for view in ui.VIEWS}
# Hidden: the sidebar draws its own menu, whose links keep each view's last state.
shown = st.navigation(list(pages.values()), position="hidden")
try:
    shown.run()
except ApiUnavailable as exc:
    st.error(str(exc), icon=":material/cloud_off:")
except ApiError as exc:
    st.error(exc.detail)
with st.sidebar:
    st.title("arXiv-kedro")
    ui.menu(next(view for view, page in pages.items() if page is shown))
