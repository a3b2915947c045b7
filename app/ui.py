"""What the views share: the API client, cached reads, navigation and small formatting helpers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from app.api import ApiClient

VIEWS = {
    "browse": "Browse & search",
    "paper": "Paper",
    "author": "Author",
    "library": "My library",
    "classify": "Classify my abstract",
    "dashboard": "Dashboard",
    "health": "Health",
}


@st.cache_resource
def client() -> ApiClient:
    """One client (one connection pool) per Streamlit process, configured from the environment."""
    return ApiClient.from_env()


@st.cache_data(ttl=60, show_spinner=False)
def categories() -> list[dict[str, Any]]:
    return client().categories()


@st.cache_data(ttl=30, show_spinner=False)
def stats(days: int = 90) -> dict[str, Any]:
    return client().stats(days)


def category_names() -> dict[str, str]:
    """Category id -> official name, for the ids a paper lists without names."""
    return {c["category"]: c["name"] for c in categories()}


def current_view() -> str:
    """The view named by `?page=`, browsing when it names none we know."""
    page = st.query_params.get("page", "browse")
    return page if page in VIEWS else "browse"


def go(view: str, **params: str) -> None:
    """Switch to `view` (as a button callback), keeping the URL shareable: `?page=view&...`."""
    st.session_state["view"] = view
    st.query_params.from_dict({"page": view, **{k: v for k, v in params.items() if v}})


def view_selected() -> None:
    """The sidebar choice changed: go there, back to the paper last opened for the paper view
    and to the last search and filters for browsing."""
    view = st.session_state["view"]
    if view == "paper":
        go(view, id=st.session_state.get("paper_id", ""))
    elif view == "browse":
        go(view, **st.session_state.get("browse_params", {}))
    else:
        go(view)


def day(timestamp: str | None) -> str:
    """An API timestamp as a day: 2025-01-02T18:00:00Z -> 2 Jan 2025."""
    if not timestamp:
        return "—"
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return f"{moment.day} {moment:%b %Y}"


def authors(names: list[str], most: int = 6) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} et al." if len(names) > most else shown


def percent(probability: float) -> str:
    return f"{probability:.0%}"
