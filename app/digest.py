"""A category's daily digest (`/digest?category=cs.CL&day=2025-01-02`): the papers of one
announcement, by default the last, split as arXiv's listings are."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from app import ui
from app.browse import FIRST_DAY, parse_day, result

# The API's parts of a digest, in arXiv's order, with their headings.
SECTIONS = {"new": "New submissions", "cross_lists": "Cross-lists", "replacements": "Replacements"}


def render() -> None:
    st.header("Daily digest")
    names = ui.category_names()
    _from_url(names)
    left, right, _ = st.columns([3, 1.3, 1.3], vertical_alignment="bottom")
    category = left.selectbox(
        "Category",
        ["", *names],
        key="digest_category",
        format_func=lambda c: f"{names[c]} ({c})" if c else "Choose a category",
    )
    day = right.date_input(
        "Announcement day",
        value=None,
        min_value=FIRST_DAY,
        key="digest_day",
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


def _from_url(names: dict[str, str]) -> None:
    """The widgets take the URL's values when the URL changed under them (reload, a link,
    Back) or they were forgotten (another view was shown), as on Browse."""
    wanted = {name: st.query_params.get(name, "") for name in ("category", "day")}
    if st.session_state.get("digest_url") == wanted and "digest_category" in st.session_state:
        return
    st.session_state["digest_url"] = wanted
    st.session_state["digest_category"] = wanted["category"] if wanted["category"] in names else ""
    st.session_state["digest_day"] = parse_day(wanted["day"])


def _to_url(category: str, day: date | None) -> None:
    """The chosen category and day into the URL (left out when empty)."""
    values = {"category": category, "day": day.isoformat() if day else ""}
    st.session_state["digest_url"] = values
    ui.to_url(values)


def _heading(digest: dict[str, Any], name: str, *, latest: bool) -> None:
    """Which announcement this is, how many papers each section lists, and the feed."""
    counts = [f"{heading}: {len(digest[part]):,}" for part, heading in SECTIONS.items()]
    which = "Last announcement" if latest else "Announced"
    st.markdown(f"**{which}: {ui.day(digest['day'])}** · {name} ({digest['category']})")
    st.caption(" · ".join(counts))
    st.link_button(
        f"Atom feed of {digest['category']}",
        ui.client().feed_url(digest["category"]),
        icon=":material/rss_feed:",
    )
