"""One author's papers, newest first (`/author?name=…`; every author name links here)."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.api import ApiError
from app.browse import PAGE_SIZE, result


def render() -> None:
    name = st.query_params.get("name", "").strip()
    column = st.columns([1, 2])[0]
    typed = column.text_input("Author", value=name, placeholder="a full name").strip()
    if typed != name:
        name = typed
        st.query_params["name"] = typed
    if not name:
        st.info("Enter an author's full name, or open one from a paper.")
        return
    try:
        found = ui.client().author(name, limit=PAGE_SIZE)
    except ApiError as exc:
        st.warning(exc.detail)
        return
    st.header(name)
    count = found["total"]
    st.caption(f"{count:,} paper{'' if count == 1 else 's'} in the store, newest first")
    names = ui.category_names()
    for index, paper in enumerate(found["items"]):
        result(index, paper, names)
    if found["next_cursor"]:
        st.caption(f'The {PAGE_SIZE} newest shown; search au:\\"{name}\\" for the others.')
