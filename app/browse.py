"""Browse the newest papers with filters, or search them; each result opens the paper view."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from app import ui

PAGE_SIZE = 20
FIRST_DAY = date(1991, 8, 14)  # arXiv's first paper: the date picker need not go further back
# Widget keys that must survive while another view is shown (main.py keeps them alive).
STATE_KEYS = ("browse_q", "browse_category", "browse_dates", "browse_has_summary")

Request = tuple[str, str, date | None, date | None, bool]


def render() -> None:
    st.header("Browse & search")
    if "browse_q" not in st.session_state:
        st.session_state["browse_q"] = st.query_params.get("q", "")
    query = st.text_input(
        "Search",
        key="browse_q",
        placeholder='Words or "quoted phrases" from titles and abstracts; press Enter',
    ).strip()
    searching = bool(query)
    _sync_url(query)

    # The API's search takes no filters: they apply while browsing and are greyed out meanwhile.
    codes = ["", *(c["category"] for c in ui.categories())]
    names = ui.category_names()
    left, middle, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    category = left.selectbox(
        "Category",
        codes,
        key="browse_category",
        format_func=lambda c: f"{names[c]} ({c})" if c else "All categories",
        disabled=searching,
    )
    dates = middle.date_input(
        "Published between",
        value=(),
        min_value=FIRST_DAY,
        max_value=date.today(),
        key="browse_dates",
        format="YYYY-MM-DD",
        disabled=searching,
    )
    has_summary = right.toggle("Has summary", key="browse_has_summary", disabled=searching)
    if searching:
        st.caption("Search ranks every paper by relevance; clear it to browse with the filters.")

    start = dates[0] if len(dates) > 0 else None
    end = dates[1] if len(dates) > 1 else None
    request: Request = (query, category, start, end, has_summary)
    pages = _pages(request)
    items = [paper for page in pages for paper in page["items"]]
    more = pages[-1]["next_cursor"] is not None

    if not items:
        if searching:
            st.info("No paper matches this search.")
        elif category or start or end or has_summary:
            st.info("No paper matches these filters.")
        else:
            st.info("No papers yet: run the ingestion pipeline (`make run`).")
        return
    shown = f"{len(items)} paper{'' if len(items) == 1 else 's'} shown"
    st.caption(shown + (", more to load" if more else ""))
    for index, paper in enumerate(items):
        _result(index, paper, names)
    if more:
        st.button("Load more", on_click=_load_more)


def _sync_url(query: str) -> None:
    """Keep the search in the URL so that a search can be shared or reloaded."""
    if query:
        st.query_params["q"] = query
    elif "q" in st.query_params:
        del st.query_params["q"]


def _pages(request: Request) -> list[dict[str, Any]]:
    """The pages loaded so far for this request; a new request starts again from page one."""
    state = st.session_state.get("browse_results")
    if state is None or state["request"] != request:
        state = {"request": request, "pages": [_fetch(request, None)]}
        st.session_state["browse_results"] = state
    elif st.session_state.pop("browse_load_more", False) and state["pages"][-1]["next_cursor"]:
        state["pages"].append(_fetch(request, state["pages"][-1]["next_cursor"]))
    return state["pages"]


def _fetch(request: Request, cursor: str | None) -> dict[str, Any]:
    query, category, start, end, has_summary = request
    client = ui.client()
    if query:
        return client.search(query, limit=PAGE_SIZE, cursor=cursor)
    return client.papers(
        category=category or None,
        published_from=start,
        published_to=end,
        has_summary=True if has_summary else None,
        limit=PAGE_SIZE,
        cursor=cursor,
    )


def _load_more() -> None:
    # Fetching in a callback would run before main.py's error handling: only note the wish.
    st.session_state["browse_load_more"] = True


def _result(index: int, paper: dict[str, Any], names: dict[str, str]) -> None:
    with st.container(border=True, gap="xsmall"):
        st.button(
            f"**{paper['title']}**",
            key=f"open-{index}-{paper['arxiv_id']}",
            type="tertiary",
            on_click=ui.go,
            args=("paper",),
            kwargs={"id": paper["arxiv_id"]},
        )
        primary = paper["primary_category"]
        badges = [f":gray-badge[arXiv: {names.get(primary, primary)} ({primary})]"]
        predicted = paper.get("predicted_category")
        if predicted:
            badges.append(
                f":violet-badge[predicted: {predicted['name']} ({predicted['category']}) "
                f"{ui.percent(predicted['probability'])}]"
            )
        if paper.get("summary_languages"):
            badges.append(f":green-badge[summary: {' '.join(paper['summary_languages'])}]")
        st.markdown(" ".join(badges))
        st.caption(f"{ui.authors(paper['authors'])} · {ui.day(paper['published'])}")
