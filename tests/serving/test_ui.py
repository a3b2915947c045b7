"""The Streamlit UI in headless chromium over the real API (a uvicorn process) and the embedded
world's papers: what a user sees and does. Screenshots of each view go to $UI_SCREENSHOTS_DIR."""

from __future__ import annotations

import copy
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from mlflow.tracking import MlflowClient
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import update

from arxiv_kedro.classification import registry
from arxiv_kedro.stores.relational.engine import Database
from arxiv_kedro.stores.schema import ingestion_runs
from tests.conftest import PROJECT_ROOT, free_port
from tests.serving.conftest import (
    API_KEY,
    OLD_STYLE_ID,
    Champion,
    World,
    monitor,
    write_conf,
)
from tests.serving.test_papers import stored_order, summary_kinds
from tests.support.atom import valid_atom
from tests.support.ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    WAIT_MS,
    open_view,
    running_api,
    running_ui,
    screenshot,
    wait_idle,
)

CHART = '[data-testid="stVegaLiteChart"]'
# Each result is a container keyed `open-<index>-<arxiv_id>`, its title a link to the paper;
# Streamlit turns the key into the CSS class `st-key-open-<index>-<id>`, `.` and `/` as `-`.
RESULT = "[class*='st-key-open-']"
SEARCH = '"conformally invariant"'  # only the old-style paper holds these words
PAGE_SIZE = 20

expect.set_options(timeout=WAIT_MS)


# --- processes and browser ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def ui_url(embedded_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI over the embedded world's API, sending its key."""
    with running_ui(embedded_api, tmp_path_factory.mktemp("ui"), API_KEY) as url:
        yield url


@pytest.fixture(scope="session")
def keyless_ui_url(embedded_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI over the same API, started without the key."""
    with running_ui(embedded_api, tmp_path_factory.mktemp("ui-keyless")) as url:
        yield url


@pytest.fixture(scope="session")
def modelless_ui_url(modelless_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI over an API that has papers and no champion model."""
    with running_ui(modelless_api, tmp_path_factory.mktemp("ui-modelless")) as url:
        yield url


@pytest.fixture(scope="session")
def down_ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI pointed at a port where nothing listens."""
    api_url = f"http://127.0.0.1:{free_port()}"
    with running_ui(api_url, tmp_path_factory.mktemp("ui-down")) as url:
        yield url


@dataclass(frozen=True)
class Staged:
    """A UI over a copy of the embedded world's stores, arranged by a test, served by an API
    that caches nothing and whose champion has a class without evaluation papers."""

    ui_url: str
    api_url: str
    relational_url: str
    unevaluated: str  # the champion's class that had no held-out paper


@pytest.fixture(scope="session")
def staged(
    embedded: World, champion: Champion, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Staged]:
    project = tmp_path_factory.mktemp("staged")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    data = project / "data" / "03_primary"
    data.mkdir(parents=True)
    stores = {**embedded.stores_globals}
    for key, name in (("relational_url", "arxiv.db"), ("documents_url", "documents.db")):
        copy_sqlite(Path(stores[key].removeprefix("sqlite:///")), data / name)
        stores[key] = f"sqlite:///{data / name}"
    write_conf(project / "conf", "local", stores)
    uri, unevaluated = registry_with_an_unevaluated_class(champion, project)
    env = embedded.environment(MLFLOW_TRACKING_URI=uri, API_CACHE_TTL_SECONDS="0")
    with (
        running_api(project / "conf", env, project) as api_url,
        running_ui(api_url, project) as ui_url,
    ):
        yield Staged(ui_url, api_url, stores["relational_url"], unevaluated)


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database another process may be using."""
    with closing(sqlite3.connect(source)) as old, closing(sqlite3.connect(target)) as new:
        old.backup(new)


def registry_with_an_unevaluated_class(champion: Champion, directory: Path) -> tuple[str, str]:
    """A registry of its own under `directory` whose champion is `champion`'s model, with an
    evaluation report in which its last class had no held-out paper (as when a category is too
    rare for the test split); its tracking URI and that class."""
    original = MlflowClient(champion.uri, champion.uri).get_model_version(
        registry.MODEL_NAME, champion.version
    )
    report = copy.deepcopy(champion.evaluation)
    unevaluated = sorted(report["per_class"])[-1]
    report["per_class"][unevaluated] = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    experiment = client.create_experiment("staged", str(directory / "mlruns"))
    run = client.create_run(experiment).info.run_id
    client.log_dict(run, report, "evaluation_report.json")
    client.set_terminated(run)
    client.create_registered_model(registry.MODEL_NAME)
    version = client.create_model_version(
        registry.MODEL_NAME, original.source, run_id=run, tags=original.tags
    )
    client.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, version.version)
    return uri, unevaluated


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (`make test` installs Debian's package)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


# --- helpers ------------------------------------------------------------------------------------


def get(api_url: str, path: str, **params: Any) -> Any:
    """What the API answers, to compare the page with."""
    response = httpx.get(f"{api_url}{path}", params=params, timeout=30)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response.json()


def expect_shown(page: Page, arxiv_ids: list[str], more: bool) -> None:
    """The results list exactly these papers, in this order (see RESULT)."""
    count = len(arxiv_ids)
    caption = f"{count} paper{'' if count == 1 else 's'} shown" + (", more to load" if more else "")
    keys = [
        re.compile(rf"(^|\s)st-key-open-{index}-{re.sub(r'[^a-zA-Z0-9_-]', '-', arxiv_id)}(\s|$)")
        for index, arxiv_id in enumerate(arxiv_ids)
    ]
    expect(page.locator(RESULT)).to_have_class(keys)
    expect(page.get_by_text(caption, exact=True)).to_be_visible()


def no_traceback(page: Page) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert "Traceback" not in page.inner_text("body")


def score(scored: dict[str, Any]) -> str:
    return f"{scored['name']} ({scored['category']}) — {scored['probability']:.0%}"


def expect_paper(page: Page, paper: dict[str, Any], champion: Champion) -> None:
    """The paper view shows the API's paper: title, authors, abstract, links, both kinds of
    categories and the model that predicted them."""
    expect(page.get_by_role("heading", name=paper["title"])).to_be_visible()
    authors = paper["authors"]
    names = ", ".join(authors[:20]) + (" et al." if len(authors) > 20 else "")
    expect(page.get_by_text(names, exact=True)).to_be_visible()
    opening = " ".join(paper["abstract"].split()[:8])
    # .first: an extractive summary repeats the abstract's opening
    expect(page.get_by_test_id("stMarkdown").filter(has_text=opening).first).to_be_visible()
    for category in paper["arxiv_categories"]:
        text = f"{category['name']} ({category['category']})"
        text += " — primary" if category["primary"] else ""
        expect(page.get_by_text(text, exact=True)).to_be_visible()
    for scored in paper["prediction"]["categories"]:
        expect(page.get_by_text(score(scored), exact=True)).to_be_visible()
    version = f"Model {registry.MODEL_NAME} version {champion.version}"
    expect(page.get_by_text(version, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="PDF")).to_have_attribute("href", paper["pdf_url"])


def newest(world: World, among: set[str]) -> str:
    return next(arxiv_id for arxiv_id in stored_order(world) if arxiv_id in among)


# --- browse and search --------------------------------------------------------------------------


def test_search_shows_the_matching_paper(page: Page, ui_url: str, embedded: World) -> None:
    open_view(page, ui_url, "browse")
    expect_shown(page, stored_order(embedded)[:PAGE_SIZE], more=True)  # newest first

    search = page.get_by_role("textbox", name="Search", exact=True)
    search.fill(SEARCH)
    search.press("Enter")

    title = embedded.corpus.papers[OLD_STYLE_ID].title
    expect(page.get_by_role("link", name=title)).to_be_visible()
    expect_shown(page, [OLD_STYLE_ID], more=False)
    assert "q=%22conformally+invariant%22" in page.url
    screenshot(page, "browse-search")


def test_browse_loads_more_and_filters_by_category(
    page: Page, ui_url: str, embedded_api: str, embedded: World, official_names: dict[str, str]
) -> None:
    order = stored_order(embedded)
    open_view(page, ui_url, "browse")
    expect_shown(page, order[:PAGE_SIZE], more=True)

    page.get_by_role("button", name="Load more").click()

    expect_shown(page, order[: 2 * PAGE_SIZE], more=True)  # page one stays
    assert page.url.endswith("?pages=2")
    page.reload()
    wait_idle(page)
    expect_shown(page, order[: 2 * PAGE_SIZE], more=True)  # as many pages after a reload
    # Each result shows arXiv's primary category and the predicted one, by name.
    first = get(embedded_api, "/v1/papers", limit=1)["items"][0]
    result = page.locator(RESULT).first
    primary = first["primary_category"]
    expect(result).to_contain_text(f"arXiv: {official_names[primary]} ({primary})")
    predicted = first["predicted_category"]
    badge = f"predicted: {predicted['name']} ({predicted['category']}) "
    if predicted["category"] == primary:  # the model agrees: nothing to add
        expect(result).not_to_contain_text("predicted:")
    else:
        expect(result).to_contain_text(badge + f"{predicted['probability']:.0%}")
    screenshot(page, "browse")

    category = page.get_by_test_id("stSelectbox").filter(has_text="Category")
    category.click()
    page.keyboard.type("hep-th")
    page.get_by_role("option", name="High Energy Physics - Theory (hep-th)").click()

    hep_th = {a for a, p in embedded.corpus.papers.items() if "hep-th" in p.categories}
    expect_shown(page, [a for a in order if a in hep_th][:PAGE_SIZE], more=True)


def test_browse_only_papers_with_a_summary(page: Page, ui_url: str, embedded: World) -> None:
    llm, extractive = summary_kinds(embedded)
    order = stored_order(embedded)
    open_view(page, ui_url, "browse")
    expect_shown(page, order[:PAGE_SIZE], more=True)

    page.get_by_text("Has summary", exact=True).click()

    summarized = [a for a in order if a in llm | extractive]
    expect_shown(page, summarized[:PAGE_SIZE], more=True)
    languages = ["en", *embedded.summaries()[summarized[0]]["translations"]]
    badge = "summary: " + " ".join(languages if summarized[0] in llm else ["en"])
    expect(page.get_by_text(badge).first).to_be_visible()


def test_back_to_browse_keeps_the_search(page: Page, ui_url: str, embedded: World) -> None:
    title = embedded.corpus.papers[OLD_STYLE_ID].title
    open_view(page, ui_url, "browse", q=SEARCH)
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()

    page.get_by_test_id("stSidebar").get_by_role("link", name="Browse & search").click()

    expect(page.get_by_role("textbox", name="Search", exact=True)).to_have_value(SEARCH)
    expect(page.get_by_role("link", name=title)).to_be_visible()
    assert "q=%22conformally+invariant%22" in page.url


def test_back_and_forward_restore_the_view_and_its_state(
    page: Page, ui_url: str, embedded: World
) -> None:
    title = embedded.corpus.papers[OLD_STYLE_ID].title
    open_view(page, ui_url, "browse")
    search = page.get_by_role("textbox", name="Search", exact=True)
    search.fill(SEARCH)
    search.press("Enter")
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    assert unquote(page.url) == f"{ui_url}/paper?id={OLD_STYLE_ID}"

    page.go_back()

    expect(search).to_have_value(SEARCH)
    expect_shown(page, [OLD_STYLE_ID], more=False)
    assert page.url == f"{ui_url}/?q=%22conformally+invariant%22"

    page.go_back()  # before the search: the newest papers

    expect(search).to_have_value("")
    expect_shown(page, stored_order(embedded)[:PAGE_SIZE], more=True)

    page.go_forward()
    expect(search).to_have_value(SEARCH)
    page.go_forward()

    expect(page.get_by_role("heading", name=title)).to_be_visible()
    assert unquote(page.url) == f"{ui_url}/paper?id={OLD_STYLE_ID}"
    no_traceback(page)


# --- a paper ------------------------------------------------------------------------------------


def test_open_a_paper_from_the_results(
    page: Page, ui_url: str, embedded_api: str, embedded: World, champion: Champion
) -> None:
    arxiv_id = stored_order(embedded)[0]
    open_view(page, ui_url, "browse")
    page.locator(RESULT).first.get_by_test_id("stPageLink-NavLink").click()  # its title

    expect_paper(page, get(embedded_api, f"/v1/papers/{arxiv_id}"), champion)
    assert unquote(page.url) == f"{ui_url}/paper?id={arxiv_id}"
    screenshot(page, "paper")


def test_switch_the_summary_to_french(page: Page, ui_url: str, embedded: World) -> None:
    llm, _ = summary_kinds(embedded)
    arxiv_id = newest(embedded, llm)
    document = embedded.summaries()[arxiv_id]
    english, french = document["summary"]["text"], document["translations"]["fr"]["text"]
    open_view(page, ui_url, "paper", id=arxiv_id)
    expect(page.get_by_text(english)).to_be_visible()

    page.get_by_role("radiogroup", name="Language").get_by_text("French").click()

    expect(page.get_by_text(french)).to_be_visible()
    expect(page.get_by_text(english)).to_have_count(0)
    expect(page.get_by_text("Written by: llm with mistral-small-latest")).to_be_visible()
    screenshot(page, "paper-french")
    assert unquote(page.url) == f"{ui_url}/paper?id={arxiv_id}&lang=fr"
    page.reload()
    wait_idle(page)
    expect(page.get_by_text(french)).to_be_visible()  # the language is in the URL


def test_pending_translations_say_so(page: Page, ui_url: str, embedded: World) -> None:
    _, extractive = summary_kinds(embedded)
    open_view(page, ui_url, "paper", id=newest(embedded, extractive))
    expect(page.get_by_text("Written by: extractive", exact=True)).to_be_visible()

    languages = page.get_by_role("radiogroup", name="Language")
    for language in ("French", "Spanish", "German"):
        languages.get_by_text(language).click()
        expect(page.get_by_text(f"The {language} text is pending")).to_be_visible()


def test_open_an_old_style_id_by_url(
    page: Page, ui_url: str, embedded_api: str, champion: Champion
) -> None:
    open_view(page, ui_url, "paper", id=OLD_STYLE_ID)

    paper = get(embedded_api, f"/v1/papers/{OLD_STYLE_ID}")
    expect_paper(page, paper, champion)
    expect(page.get_by_text("High Energy Physics - Theory (hep-th) — primary")).to_be_visible()
    expect(page.get_by_text("Written by: extractive", exact=True)).to_be_visible()
    screenshot(page, "paper-old-style-id")


def test_unknown_paper_shows_the_api_detail(page: Page, ui_url: str) -> None:
    open_view(page, ui_url, "paper", id="2501.99999")
    expect(page.get_by_text("no paper 2501.99999 in the store")).to_be_visible()
    open_view(page, ui_url, "paper", id="not an id")
    expect(page.get_by_text("is not an arXiv id")).to_be_visible()
    no_traceback(page)


# --- classify -----------------------------------------------------------------------------------


def classify(page: Page, ui_url: str, title: str, abstract: str) -> None:
    open_view(page, ui_url, "classify")
    page.get_by_role("textbox", name="Title", exact=True).fill(title)
    page.get_by_role("textbox", name="Abstract", exact=True).fill(abstract)
    page.get_by_role("button", name="Classify").click()


def test_classify_an_abstract(
    page: Page, ui_url: str, embedded_api: str, embedded: World, champion: Champion
) -> None:
    title, abstract = embedded.corpus.unseen[["title", "abstract"]].iloc[0]
    body = {"title": title, "abstract": abstract}
    response = httpx.post(
        f"{embedded_api}/v1/classify", json=body, headers={"X-API-Key": API_KEY}, timeout=30
    )
    assert response.status_code == 200, response.text
    answer = response.json()

    classify(page, ui_url, title, abstract)

    best = answer["categories"][0]
    heading = f"Best fit: {best['name']} ({best['category']})"
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    for scored in answer["categories"]:
        expect(page.get_by_text(score(scored), exact=True)).to_be_visible()
    version = f"Model {registry.MODEL_NAME} version {champion.version}"
    expect(page.get_by_text(version, exact=True)).to_be_visible()
    assert API_KEY not in page.content()
    screenshot(page, "classify")


def test_classify_warns_about_text_that_is_no_abstract(
    page: Page, ui_url: str, embedded: World
) -> None:
    classify(page, ui_url, "asdf qwer", "zxcv uiop hjkl 12345 !!!")

    expect(page.get_by_text("This does not read like an abstract (3 words")).to_be_visible()
    title, abstract = embedded.corpus.unseen[["title", "abstract"]].iloc[0]
    classify(page, ui_url, title, abstract)
    expect(page.get_by_role("heading", name=re.compile("Best fit"))).to_be_visible()
    expect(page.get_by_text("This does not read like an abstract")).to_have_count(0)


def test_classify_without_the_key_shows_why_the_api_refused(
    page: Page, keyless_ui_url: str
) -> None:
    classify(page, keyless_ui_url, "A title", "An abstract about galaxies.")

    message = "this endpoint needs an API key in the X-API-Key header"
    expect(page.get_by_test_id("stAlert").filter(has_text=message)).to_be_visible()
    no_traceback(page)


def test_classify_without_a_model_shows_the_api_detail(page: Page, modelless_ui_url: str) -> None:
    classify(page, modelless_ui_url, "A title", "An abstract about galaxies.")

    message = page.get_by_test_id("stAlert").filter(has_text="could not answer (503)")
    expect(message).to_contain_text(f"no {registry.MODEL_NAME}@{registry.CHAMPION} in the registry")
    expect(message).to_contain_text("kedro run --pipeline training")
    no_traceback(page)


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_plots_and_model(
    page: Page,
    ui_url: str,
    embedded: World,
    champion: Champion,
    official_names: dict[str, str],
) -> None:
    open_view(page, ui_url, "dashboard")

    papers = f"{len(embedded.corpus.records):,}"
    expect(page.get_by_test_id("stMetric").filter(has_text="Papers").first).to_contain_text(papers)
    macro_f1 = f"{champion.evaluation['metrics']['macro_f1']:.3f}"
    expect(page.get_by_test_id("stMetric").filter(has_text="Macro F1")).to_contain_text(macro_f1)
    expect(page.get_by_test_id("stMetric")).to_have_count(8)  # four totals, four scores
    expect(page.get_by_text(f"{registry.MODEL_NAME} version {champion.version}")).to_be_visible()
    expect(page.locator(CHART)).to_have_count(3)
    for chart in page.locator(CHART).all():  # drawn: bars in the chart's SVG
        expect(chart.locator("svg .mark-rect path").first).to_be_visible()
    for label in champion.labels:
        expect(page.locator(CHART).last).to_contain_text(f"{official_names[label]} ({label})")
    screenshot(page, "dashboard")

    page.get_by_role("button", name="Refresh").click()  # asks the API again

    expect(page.locator(CHART)).to_have_count(3)
    no_traceback(page)


def test_dashboard_without_a_model(page: Page, modelless_ui_url: str) -> None:
    open_view(page, modelless_ui_url, "dashboard")

    expect(page.get_by_text("No model yet")).to_be_visible()
    expect(page.locator(CHART)).to_have_count(2)
    no_traceback(page)


def day(text: str) -> str:
    """An API timestamp or date as the UI writes it: 2 Jan 2025."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return f"{moment.day} {moment:%b %Y}"


def expect_papers_per_day(page: Page, api_url: str, days: int) -> None:
    """The first chart plots the API's papers per day over `days`: a bar per day and primary
    category (the few categories stored need no "other"), and says which days and how many."""
    rows = get(api_url, "/v1/stats", days=days)["papers_per_day"]
    assert len({row["category"] for row in rows}) <= 8
    bars = page.locator(CHART).first.locator("svg .mark-rect path")
    expect(bars).to_have_count(len(rows))
    first, last = rows[0]["day"], rows[-1]["day"]
    total = sum(row["papers"] for row in rows)
    caption = f"{day(first)} – {day(last)}: {total:,} papers by day of publication (UTC)"
    expect(page.get_by_text(caption, exact=True)).to_be_visible()


def test_dashboard_range_covers_the_whole_history(
    page: Page, ui_url: str, embedded_api: str
) -> None:
    open_view(page, ui_url, "dashboard")
    expect_papers_per_day(page, embedded_api, 90)  # the default: the last quarter

    page.get_by_test_id("stButtonGroup").get_by_text("All", exact=True).click()

    expect_papers_per_day(page, embedded_api, 20_000)
    expect(page.get_by_text("14 Sep 1998 – ")).to_be_visible()  # the old-style paper's day
    assert page.url.endswith("/dashboard?range=All")
    page.get_by_test_id("stButtonGroup").get_by_text("30 days", exact=True).click()
    expect_papers_per_day(page, embedded_api, 30)

    page.go_back()

    expect_papers_per_day(page, embedded_api, 20_000)
    page.reload()
    wait_idle(page)
    expect_papers_per_day(page, embedded_api, 20_000)
    no_traceback(page)


def finish_ingestions(relational_url: str, at: datetime) -> None:
    """Every ingestion run of the store finished at `at`."""
    database = Database.open(relational_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(update(ingestion_runs).values(finished_at=at))
    finally:
        database.close()


@pytest.mark.parametrize("lag", [10, 1])
def test_dashboard_warns_when_the_newest_paper_is_older_than_the_last_ingestion(
    page: Page, staged: Staged, lag: int
) -> None:
    newest = get(staged.api_url, "/v1/stats")["latest_published"]
    finished = datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(days=lag)
    finish_ingestions(staged.relational_url, finished)

    open_view(page, staged.ui_url, "dashboard")
    page.get_by_role("button", name="Refresh").click()  # the UI keeps counts up to 30 s

    ingested = f"last ingestion succeeded {day(finished.isoformat())}"
    expect(page.get_by_text(f"Newest paper published {day(newest)}; {ingested}")).to_be_visible()
    warning = page.get_by_test_id("stAlert").filter(has_text="days older than the last ingestion")
    if lag > 3:
        expect(warning).to_contain_text(f"The newest paper is {lag} days older")
        screenshot(page, "dashboard-stale")
    else:
        expect(warning).to_have_count(0)
    no_traceback(page)


def test_dashboard_marks_classes_without_evaluation_papers(
    page: Page, staged: Staged, champion: Champion, official_names: dict[str, str]
) -> None:
    open_view(page, staged.ui_url, "dashboard")

    f1 = page.locator(CHART).last
    for label in champion.labels:  # every class has its row
        expect(f1).to_contain_text(f"{official_names[label]} ({label})")
    expect(f1.locator("svg .mark-text.role-mark text")).to_have_text(
        ["not evaluated (no held-out papers)"]
    )
    expect(f1.locator("svg .mark-rect path")).to_have_count(
        len(champion.labels) - 1
    )  # no blank bar
    screenshot(page, "dashboard-not-evaluated")
    no_traceback(page)


# --- the daily digest ---------------------------------------------------------------------------

SECTIONS = {"new": "New submissions", "cross_lists": "Cross-lists", "replacements": "Replacements"}


def expect_digest(page: Page, digest: dict[str, Any]) -> None:
    """Each section lists the API's papers of its part, in its order, under its count."""
    for part, heading in SECTIONS.items():
        papers = digest[part]
        expect(page.get_by_role("heading", name=f"{heading} ({len(papers)})")).to_be_visible()
        key = part.replace("_", "-")
        classes = [
            f"st-key-{key}-{i}-{re.sub(r'[^a-zA-Z0-9_-]', '-', p['arxiv_id'])}"
            for i, p in enumerate(papers)
        ]
        expected = [re.compile(rf"(^|\s){c}(\s|$)") for c in classes]
        expect(page.locator(f"[class*='st-key-{key}-']")).to_have_class(expected)
    counts = " · ".join(f"{h}: {len(digest[p])}" for p, h in SECTIONS.items())
    expect(page.get_by_text(counts, exact=True)).to_be_visible()


def test_the_digest_of_a_category_as_arxiv_lists_it(
    page: Page, ui_url: str, embedded_api: str, official_names: dict[str, str]
) -> None:
    category = "astro-ph.GA"
    digest = get(embedded_api, f"/v1/digest/{category}")
    assert sum(bool(digest[part]) for part in SECTIONS) >= 2  # more than one section to tell
    open_view(page, ui_url, "browse")
    page.get_by_test_id("stSidebar").get_by_role("link", name="Daily digest").click()
    expect(page.get_by_text("Choose a category")).to_be_visible()

    page.get_by_test_id("stSelectbox").filter(has_text="Category").click()
    page.keyboard.type(category)
    page.get_by_role("option", name=f"{official_names[category]} ({category})").click()

    expect(page.get_by_text(f"Last announcement: {day(digest['day'])}")).to_be_visible()
    expect_digest(page, digest)
    assert page.url == f"{ui_url}/digest?category={category}"
    feed = page.get_by_role("link", name=f"Atom feed of {category}")
    href = f"{embedded_api}/feeds/categories/{category}"
    expect(feed).to_have_attribute("href", href)
    valid_atom(httpx.get(href, timeout=30).content)
    screenshot(page, "digest")
    part = next(p for p in SECTIONS if digest[p])
    paper = digest[part][0]

    page.get_by_role("link", name=paper["title"]).first.click()

    expect(page.get_by_role("heading", name=paper["title"])).to_be_visible()
    assert unquote(page.url) == f"{ui_url}/paper?id={paper['arxiv_id']}"
    page.go_back()
    expect_digest(page, digest)
    page.reload()
    wait_idle(page)
    expect_digest(page, digest)
    no_traceback(page)


def test_the_digest_of_a_chosen_day_is_restored_by_back(
    page: Page, ui_url: str, embedded_api: str
) -> None:
    """hep-th/9809096 v2 appeared on 9 Nov 1998: a replacement in hep-ph, where it is
    cross-listed."""
    last = get(embedded_api, "/v1/digest/hep-ph")
    open_view(page, ui_url, "digest", category="hep-ph")
    expect_digest(page, last)
    year = page.get_by_role("group", name="Announcement day").get_by_role(
        "spinbutton", name=re.compile("^year")
    )
    expect(year).to_have_attribute("aria-valuetext", "Empty")  # the last announcement

    year.click()
    page.keyboard.type("19981109")  # year, month, day
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Daily digest").click()  # a typed date applies on leaving

    digest = get(embedded_api, "/v1/digest/hep-ph", day="1998-11-09")
    expect(page.get_by_text("Announced: 9 Nov 1998")).to_be_visible()
    expect_digest(page, digest)
    assert [p["arxiv_id"] for p in digest["replacements"]] == [OLD_STYLE_ID]
    assert page.url == f"{ui_url}/digest?category=hep-ph&day=1998-11-09"

    page.go_back()

    expect(page.get_by_text(f"Last announcement: {day(last['day'])}")).to_be_visible()
    expect_digest(page, last)
    expect(year).to_have_attribute("aria-valuetext", "Empty")
    page.go_forward()
    expect_digest(page, digest)
    expect(year).to_have_attribute("aria-valuetext", "1998")
    no_traceback(page)


# --- the menu -----------------------------------------------------------------------------------


def test_paper_and_author_are_in_the_menu_before_one_was_opened(
    page: Page, ui_url: str, embedded: World
) -> None:
    open_view(page, ui_url, "browse")
    menu = page.get_by_test_id("stSidebar")

    menu.get_by_role("link", name="Author", exact=True).click()
    expect(page.get_by_text("Enter an author's full name")).to_be_visible()
    menu.get_by_role("link", name="Paper", exact=True).click()
    expect(page.get_by_text("Enter an arXiv id")).to_be_visible()
    wait_idle(page)
    assert page.url == f"{ui_url}/paper"
    arxiv_id = page.get_by_role("textbox", name="arXiv id")
    arxiv_id.fill(OLD_STYLE_ID)
    arxiv_id.press("Enter")

    title = embedded.corpus.papers[OLD_STYLE_ID].title
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    menu.get_by_role("link", name="Browse & search").click()
    expect_shown(page, stored_order(embedded)[:PAGE_SIZE], more=True)
    menu.get_by_role("link", name="Paper", exact=True).click()  # back to the paper opened
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    no_traceback(page)


# --- health -------------------------------------------------------------------------------------


def test_health_page_plots_alarms_and_the_evidently_report(
    page: Page, ui_url: str, embedded: World
) -> None:
    summary = monitor(embedded)

    open_view(page, ui_url, "health")

    macro_f1 = f"{summary['live_quality']['macro_f1']:.3f}"
    expect(page.get_by_test_id("stMetric").filter(has_text="Live macro-F1")).to_contain_text(
        macro_f1
    )
    expect(page.get_by_test_id("stMetric").filter(has_text="Papers monitored")).to_contain_text(
        f"{summary['window']['papers']:,}"
    )
    expect(page.locator(CHART)).to_have_count(2)
    for chart in page.locator(CHART).all():  # drawn: a point per run in the chart's SVG
        expect(chart.locator("svg .mark-symbol path").first).to_be_visible()
    failed = [c for c in summary["checks"] if not c["passed"] and c["name"] != "feed alarms"]
    alarms = page.get_by_test_id("stAlert")
    expect(alarms).to_have_count(
        len(summary["feed"]["alarms"]) + len(failed) + summary["retrain_recommended"]
        or 1  # "No alarm"
    )
    for alarm in summary["feed"]["alarms"]:
        expect(alarms.filter(has_text=alarm["message"])).to_be_visible()
    # Evidently's page, drawn by its own scripts inside the frame.
    report = page.frame_locator("iframe").first
    expect(report.get_by_text("Dataset Drift").first).to_be_visible()
    expect(report.get_by_text("abstract").first).to_be_attached()
    screenshot(page, "health")
    no_traceback(page)


# --- the API away -------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["browse", "digest", "paper", "dashboard", "classify", "health"])
def test_api_down_is_explained(page: Page, down_ui_url: str, view: str) -> None:
    open_view(page, down_ui_url, view, id=OLD_STYLE_ID)
    if view == "classify":
        classify(page, down_ui_url, "A title", "An abstract.")

    message = page.get_by_test_id("stAlert").filter(has_text="is not reachable")
    expect(message).to_contain_text(re.compile(r"API at http://127\.0\.0\.1:\d+ is not reachable"))
    expect(message).to_contain_text("start it with make serve")
    no_traceback(page)
    if view == "browse":
        screenshot(page, "api-down")


# --- the prod world -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_search_and_open_a_paper_on_prod(
    page: Page, prod_api: str, prod: World, champion: Champion, tmp_path: Path
) -> None:
    title = prod.corpus.papers[OLD_STYLE_ID].title
    with running_ui(prod_api, tmp_path, API_KEY) as ui_url:
        open_view(page, ui_url, "browse", q=SEARCH)
        expect_shown(page, [OLD_STYLE_ID], more=False)

        page.get_by_role("link", name=title).click()

        expect_paper(page, get(prod_api, f"/v1/papers/{OLD_STYLE_ID}"), champion)


# --- researcher features ------------------------------------------------------------------------


def test_search_within_a_category_and_reload_restores_it(
    page: Page, ui_url: str, embedded_api: str
) -> None:
    params = {"q": "galaxy", "category": "astro-ph.CO", "sort": "newest"}
    found = get(embedded_api, "/v1/search", **params, limit=PAGE_SIZE)
    open_view(page, ui_url, "browse", **params)

    expected = [item["arxiv_id"] for item in found["items"]]
    expect_shown_of(page, expected, found["total"])
    page.reload()
    wait_idle(page)

    expect(page.get_by_role("textbox", name="Search", exact=True)).to_have_value("galaxy")
    expect_shown_of(page, expected, found["total"])
    assert "category=astro-ph.CO" in page.url and "sort=newest" in page.url
    expect(page.locator("mark").first).to_be_visible()  # the matched words, highlighted


def expect_shown_of(page: Page, arxiv_ids: list[str], total: int) -> None:
    keys = [
        re.compile(rf"(^|\s)st-key-open-{i}-{re.sub(r'[^a-zA-Z0-9_-]', '-', a)}(\s|$)")
        for i, a in enumerate(arxiv_ids)
    ]
    expect(page.locator(RESULT)).to_have_class(keys)
    expect(page.get_by_text(f"{total:,} matches in all", exact=True)).to_be_visible()


@pytest.mark.parametrize("q", ["*", "co:42 pages"])
def test_a_query_with_nothing_to_search_shows_a_hint(page: Page, ui_url: str, q: str) -> None:
    open_view(page, ui_url, "browse", q=q)

    expect(page.get_by_text("use ti: (title)" if ":" in q else "Type words")).to_be_visible()
    expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(0)
    no_traceback(page)


def test_an_author_page_lists_their_papers(
    page: Page, ui_url: str, embedded_api: str, embedded: World
) -> None:
    paper = embedded.corpus.papers[OLD_STYLE_ID]
    open_view(page, ui_url, "paper", id=OLD_STYLE_ID)
    link = page.get_by_role("link", name=paper.authors[0]).first
    expect(link).to_have_attribute("href", re.compile(r"^author\?name="))

    open_view(page, ui_url, "author", name=paper.authors[0])

    found = get(embedded_api, f"/v1/authors/{paper.authors[0]}/papers")
    expect(page.get_by_role("heading", name=paper.authors[0])).to_be_visible()
    titles = [item["title"] for item in found["items"]]
    for title in titles:
        expect(page.get_by_role("link", name=title)).to_be_visible()


def test_a_paper_shows_similar_papers_versions_and_bibtex(
    page: Page, ui_url: str, embedded_api: str
) -> None:
    open_view(page, ui_url, "paper", id=OLD_STYLE_ID)

    similar = get(embedded_api, f"/v1/papers/{OLD_STYLE_ID}/similar", limit=5)["items"]
    for item in similar:
        expect(page.get_by_role("link", name=item["title"])).to_be_visible()
    expect(page.get_by_text("v2: 9 Nov 1998")).to_be_visible()
    expect(page.get_by_text("v1: 14 Sep 1998")).to_be_visible()
    expect(page.get_by_text(f"eprint = {{{OLD_STYLE_ID}}}")).to_be_visible()
    screenshot(page, "paper-similar")


def test_tag_a_paper_then_see_recommendations(
    page: Page, ui_url: str, embedded_api: str, embedded: World
) -> None:
    tag = f"ui-{uuid.uuid4().hex[:8]}"
    arxiv_id = stored_order(embedded)[0]
    open_view(page, ui_url, "paper", id=arxiv_id)
    page.get_by_role("textbox", name="Tag").fill(tag)
    page.get_by_role("button", name="Add tag").click()
    expect(page.get_by_text(f"Tagged “{tag}”")).to_be_visible()

    open_view(page, ui_url, "library", tag=tag)

    title = embedded.corpus.papers[arxiv_id].title
    expect(page.get_by_role("heading", name=tag)).to_be_visible()
    expect(page.get_by_role("link", name=title).first).to_be_visible()
    page.get_by_role("tab", name="Recommended for you").click()
    recommended = httpx.get(
        f"{embedded_api}/v1/me/recommendations",
        params={"tag": tag},
        headers={"X-API-Key": API_KEY},
        timeout=30,
    ).json()["items"]
    assert recommended
    expect(page.get_by_role("link", name=recommended[0]["title"]).first).to_be_visible()
    screenshot(page, "library")


def me(api_url: str, method: str, path: str, **params: Any) -> Any:
    """The API's answer to the UI's user (its key) about their library."""
    response = httpx.request(
        method, f"{api_url}/v1/me{path}", params=params, headers={"X-API-Key": API_KEY}, timeout=30
    )
    assert response.is_success, (path, response.status_code, response.text)
    return response.json() if response.content else None


def expect_tagged(page: Page, tag: str, other: str) -> None:
    """The library shows `tag` chosen and its papers, not `other`'s, under the Tagged tab."""
    expect(page.get_by_role("combobox", name="Tag")).to_have_value(tag)
    expect(page.get_by_role("tab", name="Tagged")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("heading", name=tag)).to_be_visible()
    expect(page.get_by_role("heading", name=other)).to_have_count(0)


def expect_recommended(page: Page, tag: str, recommended: list[dict[str, Any]]) -> None:
    """The library shows `tag` chosen and, under its tab, `recommended` (the API's
    recommendations for `tag`), in their order."""
    expect(page.get_by_role("combobox", name="Tag")).to_have_value(tag)
    tab = page.get_by_role("tab", name="Recommended for you")
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text(f"you tagged “{tag}”")).to_be_visible()
    keys = [
        re.compile(
            rf"(^|\s)st-key-recommended-{index}-{re.sub(r'[^a-zA-Z0-9_-]', '-', arxiv_id)}(\s|$)"
        )
        for index, arxiv_id in enumerate(paper["arxiv_id"] for paper in recommended)
    ]
    expect(page.locator("[class*='st-key-recommended-']")).to_have_class(keys)


def test_back_and_reload_restore_the_library_tag_and_its_recommendations(
    page: Page, ui_url: str, embedded_api: str, embedded: World
) -> None:
    run = uuid.uuid4().hex[:8]
    tagged = {f"theory-{run}": OLD_STYLE_ID, f"newest-{run}": stored_order(embedded)[0]}
    first, second = tagged
    for tag, arxiv_id in tagged.items():
        me(embedded_api, "PUT", f"/tags/{tag}/{arxiv_id}")
    try:
        recommended = {
            tag: me(embedded_api, "GET", "/recommendations", tag=tag)["items"] for tag in tagged
        }
        assert recommended[first] and recommended[first] != recommended[second]
        open_view(page, ui_url, "library", tag=first, tab="recommended")
        expect_recommended(page, first, recommended[first])

        page.get_by_role("combobox", name="Tag").click()
        page.get_by_role("option", name=second).click()

        expect_recommended(page, second, recommended[second])
        assert unquote(page.url) == f"{ui_url}/library?tag={second}&tab=recommended"
        page.go_back()
        expect_recommended(page, first, recommended[first])
        assert unquote(page.url) == f"{ui_url}/library?tag={first}&tab=recommended"
        page.reload()
        wait_idle(page)
        expect_recommended(page, first, recommended[first])
        page.go_forward()
        expect_recommended(page, second, recommended[second])

        page.get_by_role("tab", name="Tagged").click()

        expect_tagged(page, second, first)
        assert unquote(page.url) == f"{ui_url}/library?tag={second}"
        page.go_back()
        expect_recommended(page, second, recommended[second])
        no_traceback(page)
    finally:
        for tag, arxiv_id in tagged.items():
            me(embedded_api, "DELETE", f"/tags/{tag}/{arxiv_id}")


def test_a_category_links_its_atom_feed(page: Page, ui_url: str, embedded_api: str) -> None:
    open_view(page, ui_url, "browse", category="astro-ph.GA")

    link = page.get_by_role("link", name="Atom feed of astro-ph.GA")
    href = f"{embedded_api}/feeds/categories/astro-ph.GA"
    expect(link).to_have_attribute("href", href)
    valid_atom(httpx.get(href, timeout=30).content)


def test_no_deploy_button_nor_api_address(page: Page, ui_url: str, embedded_api: str) -> None:
    open_view(page, ui_url, "browse")

    expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
    assert embedded_api not in page.inner_text('[data-testid="stSidebar"]')
