"""Draw the project's pipeline graph for the README: `kedro viz build`, served on loopback and
photographed by headless chromium (Debian's, through Playwright). `make graph`."""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ui import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

PIPELINE = "all"  # every step of the lifecycle, and the datasets between them
TARGET = ROOT / "docs" / "pipeline-graph.png"
# kedro-viz's saved settings: a light page, the graph alone, no feature tour.
SETTINGS = {
    "theme": "light",
    "showFeatureHints": False,
    "visible": {"sidebar": False, "miniMap": False, "metadataModal": False},
}


def main() -> None:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro = Path(sys.executable).parent / "kedro"
    print("kedro viz build …", flush=True)
    subprocess.run([str(kedro), "viz", "build"], cwd=ROOT, env=env, check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(ROOT / "build"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/?pid={PIPELINE}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1800, "height": 1300})
            page.add_init_script(f"localStorage.setItem('KedroViz', '{json.dumps(SETTINGS)}')")
            page.goto(url)
            page.wait_for_selector("svg .pipeline-node", timeout=60_000)
            page.wait_for_timeout(2_000)  # the layout animates into place
            page.screenshot(
                path=str(TARGET), clip={"x": 140, "y": 0, "width": 1660, "height": 1300}
            )
            browser.close()
    finally:
        server.shutdown()
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
