"""Fixtures of the UI tests: a Streamlit process per API URL, the API double, headless chromium.

`running_ui(api_url)` works against any API speaking docs/api.md: these tests point it at
`ApiDouble`; end-to-end tests can point it at the real API (`make serve`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import PROJECT_ROOT, free_port
from tests.support.api_double import ApiDouble

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The network is closed here: nothing in the browser may try to reach the internet.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_SECONDS = 60
WAIT_MS = 20_000
VIEWPORT = {"width": 1440, "height": 1000}
TEST_API_KEY = "ui-test-key-b7e1f0"  # the UI under test sends it; it must never show it
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOTS_DIR", PROJECT_ROOT / "test-artifacts" / "ui"))

expect.set_options(timeout=WAIT_MS)


@contextmanager
def running_ui(api_url: str, log_dir: Path, api_key: str | None = None) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port, talking to `api_url`; yields the UI's URL once
    `/_stcore/health` answers, and stops the process afterwards. Its output goes to
    `log_dir/streamlit.log`."""
    port = free_port()
    env = {**os.environ, "API_URL": api_url, "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("API_KEY", None)
    if api_key:
        env["API_KEY"] = api_key
    log_path = log_dir / "streamlit.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
                *("--server.port", str(port), "--server.address", "127.0.0.1"),
                *("--server.headless", "true", "--server.fileWatcherType", "none"),
                *("--browser.gatherUsageStats", "false"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer on {url} in {STARTUP_SECONDS} s")


def open_view(page: Page, ui_url: str, view: str, **params: str) -> None:
    """Open `?page=view&...` in the browser and wait until the app has drawn its first run."""
    page.goto(f"{ui_url}/?{urlencode({'page': view, **params})}")
    wait_idle(page)


def wait_idle(page: Page) -> None:
    """Wait until the current script run is over (call after the expected content appeared)."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS
    )


@pytest.fixture(scope="session")
def api_double() -> Iterator[ApiDouble]:
    with ApiDouble() as double:
        yield double


@pytest.fixture
def double(api_double: ApiDouble) -> Iterator[ApiDouble]:
    """The session's API double, healthy and with an empty request log for this test."""
    api_double.reset()
    yield api_double
    api_double.reset()


@pytest.fixture(scope="session")
def ui_url(api_double: ApiDouble, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI against the API double, sending TEST_API_KEY."""
    with running_ui(api_double.base_url, tmp_path_factory.mktemp("ui"), TEST_API_KEY) as url:
        yield url


@pytest.fixture(scope="session")
def down_ui_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI against a port where nothing listens."""
    api_url = f"http://127.0.0.1:{free_port()}"
    with running_ui(api_url, tmp_path_factory.mktemp("ui-down")) as url:
        yield url


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


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save what the page shows as `<UI_SCREENSHOTS_DIR>/<name>.png`."""

    def save(page: Page, name: str) -> Path:
        wait_idle(page)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        # Streamlit scrolls its main area inside the window: grow the window to show it whole.
        viewport = page.viewport_size or VIEWPORT
        height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
        page.set_viewport_size(
            {"width": viewport["width"], "height": max(height, VIEWPORT["height"])}
        )
        page.screenshot(path=path)
        page.set_viewport_size(viewport)
        return path

    return save
