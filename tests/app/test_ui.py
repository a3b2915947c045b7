"""The Streamlit UI in headless chromium, against the API double: what a user sees and does."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.app.conftest import TEST_API_KEY, open_view
from tests.support.api_double import PAPERS, ApiDouble

Screenshot = Callable[[Page, str], Path]
TITLES = {paper["arxiv_id"]: paper["title"] for paper in PAPERS}
SUMMARIES = PAPERS[0]["summary"]["texts"]
CHART = '[data-testid="stVegaLiteChart"]'


def _no_traceback(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert "Traceback" not in page.inner_text("body")


def test_search_shows_the_matching_paper(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    open_view(page, ui_url, "browse")
    expect(page.get_by_text(TITLES["2501.03456"])).to_be_visible()  # browsing, newest first

    search = page.get_by_role("textbox", name="Search", exact=True)
    search.fill("orientifold")
    search.press("Enter")

    expect(page.get_by_text(TITLES["hep-th/9901001"])).to_be_visible()
    expect(page.get_by_text(TITLES["2501.03456"])).to_have_count(0)
    expect(page.get_by_text("1 paper shown")).to_be_visible()
    assert [r.query["q"] for r in double.requests_to("GET", "/v1/search")] == [["orientifold"]]
    screenshot(page, "browse-search")


def test_browse_filters_by_category_and_loads_more(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    double.page_cap = 2
    open_view(page, ui_url, "browse")
    expect(page.get_by_text(TITLES["2501.02345"])).to_be_visible()
    expect(page.get_by_text(TITLES["2501.03456"])).to_have_count(0)
    expect(page.get_by_text("2 papers shown, more to load")).to_be_visible()

    page.get_by_role("button", name="Load more").click()
    expect(page.get_by_text(TITLES["2501.03456"])).to_be_visible()
    expect(page.get_by_text(TITLES["2501.01234"])).to_be_visible()  # page one stays
    cursors = [r.query.get("cursor") for r in double.requests_to("GET", "/v1/papers")]
    assert cursors[0] is None and cursors[-1] is not None
    # Each result shows arXiv's primary category and the predicted one, by name.
    expect(page.get_by_text("arXiv: Computation and Language (cs.CL)")).to_be_visible()
    expect(page.get_by_text("predicted: Computation and Language (cs.CL) 91%")).to_be_visible()
    screenshot(page, "browse")

    page.get_by_test_id("stSelectbox").filter(has_text="Category").click()
    page.get_by_role("option", name="Quantum Physics (quant-ph)").click()
    expect(page.get_by_text(TITLES["2501.04567"])).to_be_visible()
    expect(page.get_by_text(TITLES["2501.01234"])).to_have_count(0)
    assert double.requests_to("GET", "/v1/papers")[-1].query["category"] == ["quant-ph"]


def test_browse_only_papers_with_a_summary(page: Page, ui_url: str, double: ApiDouble) -> None:
    open_view(page, ui_url, "browse")
    expect(page.get_by_text(TITLES["2501.03456"])).to_be_visible()
    page.get_by_text("Has summary", exact=True).click()
    expect(page.get_by_text(TITLES["2501.03456"])).to_have_count(0)
    expect(page.get_by_text(TITLES["2501.01234"])).to_be_visible()
    assert double.requests_to("GET", "/v1/papers")[-1].query["has_summary"] == ["true"]


def test_back_to_browse_keeps_the_search(page: Page, ui_url: str, double: ApiDouble) -> None:
    open_view(page, ui_url, "browse", q="orientifold")
    page.get_by_role("button", name=TITLES["hep-th/9901001"]).click()
    expect(page.get_by_role("heading", name=TITLES["hep-th/9901001"])).to_be_visible()

    page.get_by_role("radiogroup", name="View").get_by_text("Browse & search").click()

    expect(page.get_by_role("textbox", name="Search", exact=True)).to_have_value("orientifold")
    expect(page.get_by_role("button", name=TITLES["hep-th/9901001"])).to_be_visible()
    assert "q=orientifold" in page.url


def test_open_a_paper_from_the_results(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    open_view(page, ui_url, "browse")
    page.get_by_role("button", name=TITLES["2501.01234"]).click()

    expect(page.get_by_role("heading", name=TITLES["2501.01234"])).to_be_visible()
    expect(page.get_by_text("We study whether small language models")).to_be_visible()
    expect(page.get_by_text("Ada Lovelace, Grace Hopper, Alan Turing")).to_be_visible()
    categories = page.get_by_text("Computation and Language (cs.CL) — primary")
    expect(categories).to_be_visible()
    expect(page.get_by_text("Artificial Intelligence (cs.AI)", exact=True)).to_be_visible()
    expect(page.get_by_text("Computation and Language (cs.CL) — 91%")).to_be_visible()
    expect(page.get_by_text("Model arxiv-classifier version 3")).to_be_visible()
    expect(page.get_by_role("link", name="PDF")).to_have_attribute(
        "href", "https://arxiv.org/pdf/2501.01234v2"
    )
    expect(page.get_by_text(SUMMARIES["en"]["text"])).to_be_visible()
    assert re.search(r"page=paper&id=2501\.01234", page.url)
    screenshot(page, "paper")


def test_switch_the_summary_to_french(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    open_view(page, ui_url, "paper", id="2501.01234")
    expect(page.get_by_text(SUMMARIES["en"]["text"])).to_be_visible()

    page.get_by_role("radiogroup", name="Language").get_by_text("French").click()

    expect(page.get_by_text(SUMMARIES["fr"]["text"])).to_be_visible()
    expect(page.get_by_text(SUMMARIES["en"]["text"])).to_have_count(0)
    screenshot(page, "paper-french")


def test_pending_and_failed_texts_say_so(page: Page, ui_url: str, double: ApiDouble) -> None:
    open_view(page, ui_url, "paper", id="2501.02345")
    languages = page.get_by_role("radiogroup", name="Language")
    languages.get_by_text("French").click()
    expect(page.get_by_text("The French text is pending")).to_be_visible()
    languages.get_by_text("Spanish").click()
    expect(page.get_by_text("Writing the Spanish text failed")).to_be_visible()


def test_open_an_old_style_id_by_url(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    open_view(page, ui_url, "paper", id="hep-th/9901001")

    expect(page.get_by_role("heading", name=TITLES["hep-th/9901001"])).to_be_visible()
    expect(page.get_by_text("High Energy Physics - Theory (hep-th) — 97%")).to_be_visible()
    assert [r.path for r in double.requests_to("GET", "/v1/papers/hep-th/9901001")]
    screenshot(page, "paper-old-style-id")


def test_unknown_paper_shows_the_api_detail(page: Page, ui_url: str, double: ApiDouble) -> None:
    open_view(page, ui_url, "paper", id="2501.99999")
    expect(page.get_by_text("no paper 2501.99999 in the store")).to_be_visible()
    open_view(page, ui_url, "paper", id="not an id")
    expect(page.get_by_text("is not an arXiv id")).to_be_visible()
    _no_traceback(page)


def test_classify_an_abstract(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    abstract = (
        "We segment every pixel of street images and video frames with a vision transformer, "
        "and estimate depth from the same features."
    )
    open_view(page, ui_url, "classify")
    page.get_by_role("textbox", name="Title", exact=True).fill(
        "Joint segmentation and depth for driving scenes"
    )
    page.get_by_role("textbox", name="Abstract", exact=True).fill(abstract)
    page.get_by_role("button", name="Classify").click()

    top = "Computer Vision and Pattern Recognition (cs.CV)"
    expect(page.get_by_role("heading", name=top)).to_be_visible()
    expect(page.get_by_text(re.compile(rf"^{re.escape(top)} — \d+%$"))).to_be_visible()
    expect(page.get_by_text("Model arxiv-classifier version 3")).to_be_visible()
    (sent,) = double.requests_to("POST", "/v1/classify")
    assert sent.body == {
        "title": "Joint segmentation and depth for driving scenes",
        "abstract": abstract,
    }
    assert sent.headers["x-api-key"] == TEST_API_KEY
    assert TEST_API_KEY not in page.content()
    screenshot(page, "classify")


def test_classify_shows_why_the_api_refused(page: Page, ui_url: str, double: ApiDouble) -> None:
    double.api_keys = {"another-key"}
    open_view(page, ui_url, "classify")
    page.get_by_role("textbox", name="Title", exact=True).fill("A title")
    page.get_by_role("textbox", name="Abstract", exact=True).fill(
        "An abstract about quantum qubits."
    )
    page.get_by_role("button", name="Classify").click()
    expect(page.get_by_text("this API key is not valid")).to_be_visible()
    _no_traceback(page)


def test_dashboard_plots_and_model(
    page: Page, ui_url: str, double: ApiDouble, screenshot: Screenshot
) -> None:
    open_view(page, ui_url, "dashboard")
    page.get_by_role("button", name="Refresh").click()  # counts are cached across tests

    expect(page.get_by_test_id("stMetric").filter(has_text="Macro F1")).to_contain_text("0.740")
    expect(page.get_by_text("arxiv-classifier version 3")).to_be_visible()
    expect(page.locator(CHART)).to_have_count(3)
    for chart in page.locator(CHART).all():  # drawn: bars in the chart's SVG
        expect(chart.locator("svg .mark-rect path").first).to_be_visible()
    expect(page.locator(CHART).last).to_contain_text("Quantum Physics (quant-ph)")
    screenshot(page, "dashboard")

    double.model = False
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_text("No model yet")).to_be_visible()
    expect(page.locator(CHART)).to_have_count(2)
    double.model = True
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator(CHART)).to_have_count(3)


@pytest.mark.parametrize("view", ["browse", "paper", "dashboard", "classify"])
def test_api_down_is_explained(
    page: Page, down_ui_url: str, view: str, screenshot: Screenshot
) -> None:
    open_view(page, down_ui_url, view, id="2501.01234")
    if view == "classify":
        page.get_by_role("textbox", name="Title", exact=True).fill("A title")
        page.get_by_role("textbox", name="Abstract", exact=True).fill("An abstract.")
        page.get_by_role("button", name="Classify").click()

    message = page.get_by_test_id("stAlert").filter(has_text="is not reachable")
    expect(message).to_contain_text(re.compile(r"API at http://127\.0\.0\.1:\d+ is not reachable"))
    expect(message).to_contain_text("start it with make serve")
    _no_traceback(page)
    if view == "browse":
        screenshot(page, "api-down")


def test_api_failing_is_explained(page: Page, ui_url: str, double: ApiDouble) -> None:
    double.outage = 503
    open_view(page, ui_url, "paper", id="2501.01234")
    expect(page.get_by_text("could not answer (503)")).to_be_visible()
    expect(page.get_by_text("the paper store is not available")).to_be_visible()
    _no_traceback(page)
