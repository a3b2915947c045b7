"""My library (`/library?tag=to-read&tab=recommended`): tagged papers by tag, and
recommendations learned from them. The chosen tag and tab are in the URL, as on Browse."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.browse import result

TAGGED, RECOMMENDED = "Tagged", "Recommended for you"


def render() -> None:
    st.header("My library")
    tags = ui.client().tags()
    if not tags:
        st.info("No tagged paper yet: open a paper and give it a tag (e.g. to-read).")
        return
    names = ui.category_names()
    choices = ["", *(t["tag"] for t in tags)]
    _from_url(choices)
    chosen = st.selectbox("Tag", choices, key="library_tag", format_func=lambda t: t or "Every tag")
    # Tracked tabs (rerun on a switch): the URL says which is shown, and only it is drawn.
    tagged, recommended = st.tabs([TAGGED, RECOMMENDED], key="library_tab", on_change="rerun")
    _to_url(chosen, "recommended" if recommended.open else "")
    if tagged.open:
        with tagged:
            for tag in tags:
                if chosen in ("", tag["tag"]):
                    st.subheader(tag["tag"])
                    for index, paper in enumerate(tag["papers"]):
                        result(index, paper, names, key=f"tagged-{tag['tag']}")
    if recommended.open:
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


def _from_url(choices: list[str]) -> None:
    """The widgets take the URL's values when the URL changed under them (reload, a link,
    Back) or they were forgotten (another view was shown), as on Browse; a tag no longer in
    the library (untagged meanwhile) falls back to every tag."""
    wanted = {name: st.query_params.get(name, "") for name in ("tag", "tab")}
    if st.session_state.get("library_url") != wanted or "library_tag" not in st.session_state:
        st.session_state["library_url"] = wanted
        st.session_state["library_tag"] = wanted["tag"]
        st.session_state["library_tab"] = RECOMMENDED if wanted["tab"] == "recommended" else TAGGED
    if st.session_state["library_tag"] not in choices:
        st.session_state["library_tag"] = ""


def _to_url(tag: str, tab: str) -> None:
    """The chosen tag and tab into the URL (left out when empty: every tag, Tagged)."""
    values = {"tag": tag, "tab": tab}
    st.session_state["library_url"] = values
    ui.to_url(values)
