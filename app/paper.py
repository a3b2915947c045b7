"""One paper (`/paper?id=…`): abstract, links, arXiv's categories next to the predicted ones,
the summary by language (`&lang=fr`)."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from app import ui
from app.api import ApiError
from app.browse import author_links, result

# New-style (2501.01234) and old-style (hep-th/9901001) ids, with an optional version suffix.
ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z][a-z\-]*(\.[A-Z]{2})?/\d{7})(v\d+)?")


def render() -> None:
    wanted = st.query_params.get("id", "").strip()
    typed = (
        st.columns([1, 2])[0]
        .text_input(
            "arXiv id", value=wanted, placeholder="2501.01234 or hep-th/9901001; press Enter"
        )
        .strip()
    )
    if typed != wanted:
        wanted = typed
        st.query_params["id"] = typed
    if not wanted:
        st.info("Enter an arXiv id, or open a paper from Browse & search.")
        return
    if not ARXIV_ID.fullmatch(wanted):
        st.warning(f"“{wanted}” is not an arXiv id: they look like 2501.01234 or hep-th/9901001.")
        return
    try:
        paper = ui.client().paper(wanted)
    except ApiError as exc:
        st.warning(exc.detail)
        return
    _header(paper)
    main, side = st.columns([2, 1], gap="large")
    with main:
        st.subheader("Abstract")
        st.markdown(paper["abstract"])
        _summary(paper.get("summary"))
        _similar(paper)
    with side:
        _categories(paper)
        _versions(paper)
        _tags(paper)
        st.subheader("Cite")
        st.code(paper["bibtex"], language="bibtex", wrap_lines=True)


def _header(paper: dict[str, Any]) -> None:
    st.title(paper["title"])
    st.markdown(f"**{author_links(paper['authors'], most=20)}**")
    dates = f"Published {ui.day(paper['published'])}"
    if paper.get("updated") and ui.day(paper["updated"]) != ui.day(paper["published"]):
        dates += f", updated {ui.day(paper['updated'])}"
    facts = [f"arXiv:{paper['arxiv_id']}v{paper['version']}", dates]
    facts += [paper[k] for k in ("comments", "journal_ref") if paper.get(k)]
    if paper.get("doi"):
        facts.append(f"DOI [{paper['doi']}](https://doi.org/{paper['doi']})")
    st.caption(" · ".join(facts))
    with st.container(horizontal=True):
        st.link_button("Abstract page", paper["abs_url"], icon=":material/open_in_new:")
        st.link_button("PDF", paper["pdf_url"], icon=":material/picture_as_pdf:")


def _categories(paper: dict[str, Any]) -> None:
    st.subheader("arXiv's categories")
    for category in paper["arxiv_categories"]:
        primary = " — primary" if category["primary"] else ""
        st.markdown(f"- {category['name']} (`{category['category']}`){primary}")
    st.subheader("Predicted")
    prediction = paper.get("prediction")
    if not prediction:
        st.info("Not classified yet: the inference pipeline has not reached this paper.")
        return
    for scored in prediction["categories"]:
        st.progress(
            min(max(scored["probability"], 0.0), 1.0),
            text=f"{scored['name']} ({scored['category']}) — {ui.percent(scored['probability'])}",
        )
    st.caption(f"Model {prediction['model_name']} version {prediction['model_version']}")


def _summary(summary: dict[str, Any] | None) -> None:
    st.subheader("Summary")
    if not summary or not summary.get("texts"):
        st.info("No summary yet: the summarization pipeline has not reached this paper.")
        return
    texts = summary["texts"]
    codes = list(texts)
    default = "en" if "en" in codes else codes[0]
    wanted = st.query_params.get("lang", default)  # the URL keeps any other language
    wanted = wanted if wanted in codes else default
    # The radio takes the URL's language when the URL changed under it (a link, Back, reload).
    if st.session_state.get("paper_lang_url") != wanted or "paper_lang" not in st.session_state:
        st.session_state["paper_lang"] = wanted
    chosen = st.radio(
        "Language",
        codes,
        key="paper_lang",
        format_func=lambda code: texts[code].get("language") or code,
        horizontal=True,
    )
    st.session_state["paper_lang_url"] = chosen
    if chosen == default:
        st.query_params.pop("lang", None)
    elif st.query_params.get("lang") != chosen:
        st.query_params["lang"] = chosen
    text = texts[chosen]
    language = text.get("language") or chosen
    if text["status"] == "done" and text.get("text"):
        st.markdown(text["text"])
        made_by = " with ".join(str(text[k]) for k in ("method", "model") if text.get(k))
        if made_by:
            st.caption(f"Written by: {made_by}")
    elif text["status"] == "pending":
        st.info(
            f"The {language} text is pending: translations wait for an LLM "
            "(the summarization pipeline writes them once MISTRAL_API_KEY is set)."
        )
    else:
        st.warning(f"Writing the {language} text failed for this version of the paper.")


def _versions(paper: dict[str, Any]) -> None:
    st.subheader("Versions")
    for version in reversed(paper["versions"]):
        when = ui.day(version["date"]) if version["date"] else "date not listed"
        st.markdown(f"- v{version['version']}: {when}")


def _similar(paper: dict[str, Any]) -> None:
    st.subheader("Similar papers")
    similar = ui.client().similar(paper["arxiv_id"], limit=5)
    if not similar:
        st.info("No paper shares enough words with this one.")
    names = ui.category_names()
    for index, other in enumerate(similar):
        result(index, other, names, key="similar")


def _tags(paper: dict[str, Any]) -> None:
    st.subheader("My library")
    arxiv_id = paper["arxiv_id"]
    with st.form("tag", border=False, enter_to_submit=True):
        tag = st.text_input("Tag", placeholder="e.g. to-read", max_chars=64)
        if st.form_submit_button("Add tag", icon=":material/bookmark_add:") and tag.strip():
            try:
                ui.client().tag(tag.strip(), arxiv_id)
                st.success(f"Tagged “{tag.strip()}”")
            except ApiError as exc:
                st.warning(exc.detail)
