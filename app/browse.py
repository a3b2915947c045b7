"""Browse the newest papers with filters, or search them with the same filters; each result
opens the paper view. The view's whole state is in the URL: a reload or a shared link restores
it."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import quote

import streamlit as st

from app import ui

PAGE_SIZE = 20
FIRST_DAY = date(1991, 8, 14)  # arXiv's first paper: the date picker need not go further back
# Each filter's widget key and the URL parameter it is kept in.
URL_KEYS = {
    "browse_q": "q",
    "browse_category": "category",
    "browse_from": "from",
    "browse_to": "to",
    "browse_has_summary": "summary",
    "browse_sort": "sort",
}
SORTS = {"relevance": "Most relevant", "newest": "Newest"}

Request = tuple[str, str, date | None, date | None, bool, str]


def render() -> None:
    st.header("Browse & search")
    _from_url()
    query = st.text_input(
        "Search",
        key="browse_q",
        placeholder='Words, "phrases", au:name, ti:word, cat:cs.CL; press Enter',
    ).strip()
    codes = ["", *(c["category"] for c in ui.categories())]
    names = ui.category_names()
    if st.session_state.get("browse_category") not in codes:
        st.session_state["browse_category"] = ""
    left, start_column, end_column, toggle, order = st.columns(
        [3, 1.3, 1.3, 1, 1.3], vertical_alignment="bottom"
    )
    category = left.selectbox(
        "Category",
        codes,
        key="browse_category",
        format_func=lambda c: f"{names[c]} ({c})" if c else "All categories",
    )
    # Two fields, not a range picker: a typed date applies without the calendar, once the field
    # loses focus (Enter alone does not apply it).
    start = start_column.date_input(
        "Published from", value=None, min_value=FIRST_DAY, key="browse_from", format="YYYY-MM-DD"
    )
    end = end_column.date_input(
        "to", value=None, min_value=FIRST_DAY, key="browse_to", format="YYYY-MM-DD"
    )
    has_summary = toggle.toggle("Has summary", key="browse_has_summary")
    sort = order.selectbox(
        "Order", list(SORTS), key="browse_sort", format_func=SORTS.get, disabled=not query
    )
    _to_url()
    if category:
        st.link_button(
            f"Atom feed of {category}", ui.client().feed_url(category), icon=":material/rss_feed:"
        )

    request: Request = (query, category, start, end, has_summary, sort)
    pages = _pages(request, _count(st.query_params.get("pages", "")))
    hint = pages[0].get("hint")
    if hint:
        st.info(hint, icon=":material/lightbulb:")
        return
    items = [paper for page in pages for paper in page["items"]]
    more = pages[-1]["next_cursor"] is not None

    if not items:
        if query:
            st.info("No paper matches this search.")
        elif category or start or end or has_summary:
            st.info("No paper matches these filters.")
        else:
            st.info("No papers yet: run the ingestion pipeline (`make run`).")
        return
    if query:
        total = pages[0]["total"]
        plural = "match" if total == 1 else "matches"
        st.caption(f"{total:,}{'+' if pages[0]['total_capped'] else ''} {plural} in all")
    shown = f"{len(items)} paper{'' if len(items) == 1 else 's'} shown"
    st.caption(shown + (", more to load" if more else ""))
    for index, paper in enumerate(items):
        result(index, paper, names)
    if more:
        st.button("Load more", on_click=_load_more, args=(len(pages),))


def _from_url() -> None:
    """The widgets take the URL's values when the URL changed under them (reload, a link,
    Back) or they were forgotten (another view was shown): the URL is the view's state."""
    wanted = {key: st.query_params.get(name, "") for key, name in URL_KEYS.items()}
    if st.session_state.get("browse_url") == wanted and "browse_q" in st.session_state:
        return
    st.session_state["browse_url"] = wanted
    st.session_state["browse_q"] = wanted["browse_q"]
    st.session_state["browse_category"] = wanted["browse_category"]
    for key in ("browse_from", "browse_to"):
        st.session_state[key] = parse_day(wanted[key])
    st.session_state["browse_has_summary"] = wanted["browse_has_summary"] == "1"
    sort = wanted["browse_sort"]
    st.session_state["browse_sort"] = sort if sort in SORTS else "relevance"


def _to_url() -> None:
    """Every filter into the URL (empty ones left out), so that it can be reloaded or shared;
    changed filters start again from the first page of results."""
    state = st.session_state
    values = {
        "browse_q": state["browse_q"].strip(),
        "browse_category": state["browse_category"] or "",
        "browse_from": state["browse_from"].isoformat() if state["browse_from"] else "",
        "browse_to": state["browse_to"].isoformat() if state["browse_to"] else "",
        "browse_has_summary": "1" if state["browse_has_summary"] else "",
        "browse_sort": state["browse_sort"] if state["browse_sort"] != "relevance" else "",
    }
    if values != st.session_state.get("browse_url"):
        st.query_params.pop("pages", None)
    st.session_state["browse_url"] = values
    ui.to_url({name: values[key] for key, name in URL_KEYS.items()})


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _count(text: str) -> int:
    """The number of result pages shown (`?pages=`), one unless the URL says more."""
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _pages(request: Request, count: int) -> list[dict[str, Any]]:
    """The first `count` pages of results (fewer if there are no more), fetched once each per
    request: going back to fewer pages and forward again fetches nothing."""
    state = st.session_state.get("browse_results")
    if state is None or state["request"] != request:
        state = {"request": request, "pages": [_fetch(request, None)]}
        st.session_state["browse_results"] = state
    pages = state["pages"]
    while len(pages) < count and pages[-1]["next_cursor"]:
        pages.append(_fetch(request, pages[-1]["next_cursor"]))
    return pages[:count]


def _fetch(request: Request, cursor: str | None) -> dict[str, Any]:
    query, category, start, end, has_summary, sort = request
    filters = {
        "category": category or None,
        "published_from": start,
        "published_to": end,
        "has_summary": True if has_summary else None,
        "limit": PAGE_SIZE,
        "cursor": cursor,
    }
    if query:
        return ui.client().search(query, sort=sort, **filters)
    return ui.client().papers(**filters)


def _load_more(shown: int) -> None:
    # Fetching in a callback would run before main.py's error handling: only note the wish, in
    # the URL, so that a reload or Back shows as many pages.
    st.query_params["pages"] = str(shown + 1)


def result(index: int, paper: dict[str, Any], names: dict[str, str], key: str = "open") -> None:
    """One paper of a list, keyed `<key>-<index>-<arxiv_id>`: its title links to it; badges,
    authors (each links to their papers)."""
    with st.container(border=True, gap="xsmall", key=f"{key}-{index}-{paper['arxiv_id']}"):
        ui.link("paper", f"**{paper['title']}**", id=paper["arxiv_id"])
        primary = paper["primary_category"]
        badges = [f":gray-badge[arXiv: {names.get(primary, primary)} ({primary})]"]
        if paper.get("cross_list"):
            badges.append(":orange-badge[cross-list]")
        predicted = paper.get("predicted_category")
        # The model's guess only says something where it disagrees with arXiv's primary.
        if predicted and predicted["category"] != primary:
            badges.append(
                f":violet-badge[predicted: {predicted['name']} ({predicted['category']}) "
                f"{ui.percent(predicted['probability'])}]"
            )
        if "score" in paper and "snippet" not in paper:
            badges.append(f":blue-badge[similarity {paper['score']:.2f}]")
        if paper.get("summary_languages"):
            badges.append(f":green-badge[summary: {' '.join(paper['summary_languages'])}]")
        st.markdown(" ".join(badges))
        if paper.get("snippet"):
            st.markdown(_marked(paper["snippet"]), unsafe_allow_html=True)
        st.markdown(f"{author_links(paper['authors'])} · {ui.day(paper['published'])}")


def _marked(snippet: str) -> str:
    """The API's snippet (escaped HTML, matches in <mark>) with nothing else Markdown reads."""
    return re.sub(r"([\\`*_{}\[\]()#+!|$~-])", r"\\\1", snippet)


def author_links(names: list[str], most: int = 6) -> str:
    """Markdown: each author links to their papers; "authors unavailable" when the source
    names none."""
    if not names:
        return "*Authors unavailable*"
    links = [f"[{name}](author?name={quote(name)})" for name in names[:most]]
    return ", ".join(links) + (" et al." if len(names) > most else "")
