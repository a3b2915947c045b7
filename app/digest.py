"""A category's daily digest (`/digest?category=cs.CL&day=2025-01-02`): the papers of one
announcement, by default the last, split as arXiv's listings are."""

from __future__ import annotations

from datetime import date

import streamlit as st

from app import ui
from app.browse import FIRST_DAY, parse_day, result

# The API's parts of a digest, in arXiv's order, with their headings.
SECTIONS = {"new": "New submissions", "cross_lists": "Cross-lists", "replacements": "Replacements"}


def render() -> None:
    st.header("Daily digest")
    names = ui.category_names()
    codes = list(names)
    wanted = st.query_params.get("category", "")
    left, right, _ = st.columns([3, 1.3, 1.3], vertical_alignment="bottom")
    # No key: the widgets take the URL's values whenever the URL changes (Back, a link, reload).
    category = left.selectbox(
        "Category",
        codes,
        index=codes.index(wanted) if wanted in codes else None,
        format_func=lambda c: f"{names[c]} ({c})",
        placeholder="Choose a category",
    )
    day = right.date_input(
        "Announcement day",
        value=parse_day(st.query_params.get("day", "")),
        min_value=FIRST_DAY,
        format="YYYY-MM-DD",
        help="Empty: the category's last announcement",
    )
    _to_url(category, day)
    if not category:
        st.info("Choose a category: its last announcement is shown, as arXiv lists it.")
        return
    digest = ui.client().digest(category, day)
    _heading(digest, names[category], latest=day is None)
    if not any(digest[part] for part in SECTIONS):
        st.info(
            f"No paper of {category} was announced on {ui.day(digest['day'])} (arXiv announces "
            "on weekdays): clear the day for the last announcement."
        )
        return
    for part, heading in SECTIONS.items():
        papers = digest[part]
        st.subheader(f"{heading} ({len(papers)})")
        if not papers:
            st.caption(f"No {heading.lower()} that day.")
        for index, paper in enumerate(papers):
            result(index, paper, names, key=part.replace("_", "-"))


def _to_url(category: str | None, day: date | None) -> None:
    """The chosen category and day into the URL (left out when empty)."""
    for name, value in (("category", category), ("day", day.isoformat() if day else None)):
        if value and st.query_params.get(name) != value:
            st.query_params[name] = value
        elif not value and name in st.query_params:
            del st.query_params[name]


def _heading(digest: dict, name: str, *, latest: bool) -> None:
    counts = [f"{len(digest[part]):,} {heading.lower()}" for part, heading in SECTIONS.items()]
    which = "Last announcement" if latest else "Announced"
    st.markdown(f"**{which}: {ui.day(digest['day'])}** · {name} ({digest['category']})")
    st.caption(" · ".join(counts))
    st.link_button(
        f"Atom feed of {digest['category']}",
        ui.client().feed_url(digest["category"]),
        icon=":material/rss_feed:",
    )
