"""The API and the Streamlit UI as processes, and headless chromium driving the UI: what the
browser tests (tests/serving/test_ui.py) run on.

    with running_api(world.conf, env, log_dir) as api_url, running_ui(api_url, log_dir) as url:
        open_view(page, url, "paper", id="hep-th/9809096")
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Page

from tests.conftest import PROJECT_ROOT, free_port

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
# Generous: other work may keep the machine busy, and the API loads the model before it is ready.
STARTUP_SECONDS = 120
WAIT_MS = 30_000
VIEWPORT = {"width": 1440, "height": 1000}
UVICORN = Path(sys.executable).parent / "uvicorn"


def screenshots_dir() -> Path:
    """`$UI_SCREENSHOTS_DIR`, default `test-artifacts/ui/` in the repository."""
    return Path(os.environ.get("UI_SCREENSHOTS_DIR", PROJECT_ROOT / "test-artifacts" / "ui"))


@contextmanager
def running_api(
    conf_source: Path, env: dict[str, str], log_dir: Path, *, ready: bool = True
) -> Iterator[str]:
    """`uvicorn serving.main:app` on a free port, run in the project directory holding
    `conf_source` with `env` over the current environment; yields the API's URL once
    `/health/ready` answers 200 (stores reachable, model loaded), or only `/health` with
    `ready=False` (an API meant to lack something), and stops it afterwards. Its output goes to
    `log_dir/api.log`."""
    port = free_port()
    command = [
        *(str(UVICORN), "serving.main:app", "--app-dir", str(PROJECT_ROOT)),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("API_")},  # only `env`'s
        "KEDRO_DISABLE_TELEMETRY": "true",
        "API_CONF_SOURCE": str(conf_source),
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    health = f"{url}/health/ready" if ready else f"{url}/health"
    listening = f"Uvicorn running on {url}"
    with _serving(command, conf_source.parent, env, log_dir / "api.log", health, listening):
        yield url


@contextmanager
def running_ui(api_url: str, log_dir: Path, api_key: str | None = None) -> Iterator[str]:
    """`streamlit run app/main.py` on a free port, talking to `api_url` (sending `api_key`, if
    any); yields the UI's URL once `/_stcore/health` answers, and stops the process afterwards.
    Its output goes to `log_dir/streamlit.log`."""
    port = free_port()
    env = {**os.environ, "API_URL": api_url, "KEDRO_DISABLE_TELEMETRY": "true"}
    env.pop("API_KEY", None)
    if api_key:
        env["API_KEY"] = api_key
    command = [
        *(sys.executable, "-m", "streamlit", "run", "app/main.py"),
        *("--server.port", str(port), "--server.address", "127.0.0.1"),
        *("--server.headless", "true", "--server.fileWatcherType", "none"),
        *("--browser.gatherUsageStats", "false"),
    ]
    url = f"http://127.0.0.1:{port}"
    log_path, health = log_dir / "streamlit.log", f"{url}/_stcore/health"
    with _serving(command, PROJECT_ROOT, env, log_path, health, listening=f"URL: {url}"):
        yield url


@contextmanager
def _serving(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path, health: str, listening: str
) -> Iterator[None]:
    """Run `command` until the block ends, once `health` answers 200 and its log says
    `listening`: another process may have taken the free port in between, and answer."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(health, process, log_path, listening)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path, listening: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    status = None
    while (left := deadline - time.monotonic()) > 0:
        if process.poll() is not None:
            command = " ".join(str(arg) for arg in process.args[:4])
            raise RuntimeError(
                f"`{command} …` exited ({process.returncode}):\n{log_path.read_text()}"
            )
        try:
            # A readiness check may wait for the model to load: one request at a time, long.
            status = httpx.get(url, timeout=max(left, 1)).status_code
            if status == 200 and listening in log_path.read_text():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{url} did not answer 200 in {STARTUP_SECONDS} s (last status {status}); "
        f"see {log_path}:\n{log_path.read_text()[-3000:]}"
    )


def open_view(page: Page, ui_url: str, view: str, **params: str) -> None:
    """Open `/view?params` (browsing: `/?params`) in the browser and wait until the app has
    drawn its first run."""
    path = "" if view == "browse" else view
    page.goto(f"{ui_url}/{path}" + (f"?{urlencode(params)}" if params else ""))
    wait_idle(page)


def wait_idle(page: Page) -> None:
    """Wait until the current script run is over (call after the expected content appeared)."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=WAIT_MS
    )


def screenshot(page: Page, name: str) -> Path:
    """Save what the page shows, whole, as `<UI_SCREENSHOTS_DIR>/<name>.png`."""
    wait_idle(page)
    directory = screenshots_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    # Streamlit scrolls its main area inside the window: grow the window to show it whole.
    viewport = page.viewport_size or VIEWPORT
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, VIEWPORT["height"])})
    page.screenshot(path=path)
    page.set_viewport_size(viewport)
    return path
