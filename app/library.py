"""My library: tagged papers by tag, and recommendations learned from them."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.browse import result


def render() -> None:
    st.header("My library")
    tags = ui.client().tags()
    if not tags:
        st.info("No tagged paper yet: open a paper and give it a tag (e.g. to-read).")
        return
    names = ui.category_names()
    choices = ["", *(t["tag"] for t in tags)]
    if st.query_params.get("tag", "") not in choices:
        st.query_params.pop("tag", None)
    chosen = st.selectbox(
        "Tag",
        choices,
        index=choices.index(st.query_params.get("tag", "")),
        format_func=lambda t: t or "Every tag",
    )
    if chosen != st.query_params.get("tag", ""):
        if chosen:
            st.query_params["tag"] = chosen
        else:
            del st.query_params["tag"]
    tagged, recommended = st.tabs(["Tagged", "Recommended for you"])
    with tagged:
        for tag in tags:
            if chosen in ("", tag["tag"]):
                st.subheader(tag["tag"])
                for index, paper in enumerate(tag["papers"]):
                    result(index, paper, names, key=f"tagged-{tag['tag']}")
    with recommended:
        found = ui.client().recommendations(chosen or None)
        if found["hint"]:
            st.info(found["hint"])
        st.caption(
            f"The newest papers ranked by a model of the {found['tagged']} papers you tagged"
            + (f" “{chosen}”" if chosen else "")
        )
        for index, paper in enumerate(found["items"]):
            result(index, paper, names, key="recommended")
