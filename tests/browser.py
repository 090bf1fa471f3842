"""Real Chromium for the tests that must see a page as a browser does.

Debian's ``chromium`` and ``chromium-driver``, driven by Selenium. The browser may reach the
test server only: every other host name resolves to nothing (``--host-resolver-rules``), so a
page that loads anything from a CDN fails to render instead of passing on a machine that
happens to be online. Tests that need it are skipped where Chromium is missing, unless
``REQUIRE_BROWSER=1`` (CI), where a missing browser is an error. Screenshots go to
``var/screenshots/`` (``SCREENSHOT_DIR``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parent.parent / "var" / "screenshots"))
SIZES = {"desktop": (1366, 900), "phone": (375, 812)}


def browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and shutil.which(path) is None:
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    return None


def require_browser() -> None:
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {missing}")
    pytest.skip(missing)


@contextmanager
def chromium(width: int, height: int) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-test-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        # Only the test server answers: any other host does not resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    # The viewport exactly (a headless window is never narrower than 500 px), as a phone at
    # phone width.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def reaches(driver: Any, url: str) -> bool:
    """Whether the browser can load ``url`` (any other host than the server must fail)."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.get(url)
    except WebDriverException as exc:  # net::ERR_NAME_NOT_RESOLVED and the like
        return "net::ERR_" not in str(exc)
    return not str(driver.current_url).startswith("chrome-error://")


def sign_in_with_session(driver: Any, base_url: str, client: Any) -> None:
    """Give the browser the session of a Django test client that has signed in."""
    cookie = client.cookies[os.environ.get("SESSION_COOKIE_NAME", "sessionid")]
    driver.get(base_url + "/healthz")
    driver.add_cookie({"name": cookie.key, "value": cookie.value, "path": "/"})


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, top to bottom, at the window's width."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    width, height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    full = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "width": width, "height": min(full, 6000)})
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "width": width, "height": height})
    return path


def resources_loaded(driver: Any) -> list[str]:
    """Every URL the page fetched: the document and what it loaded."""
    urls = driver.execute_script(
        "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name));"
    )
    return [str(url) for url in urls]


AXE = Path(__file__).resolve().parent / "assets" / "axe-4.14.1.min.js"


def axe_violations(driver: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA violations of the page in the browser, of these impacts:
    each with its rule, impact, help text and the offending elements."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));"
    )
    return [
        {
            "rule": v["id"],
            "impact": v.get("impact"),
            "help": v.get("help"),
            "nodes": [n.get("target") for n in v.get("nodes", [])][:5],
        }
        for v in result
        if v.get("impact") in impacts
    ]


def pdf_pages(driver: Any, paper: str) -> int:
    """The pages Chromium prints the current page on, on A4 or Letter paper."""
    import base64
    import re

    width, height = {"a4": (8.27, 11.69), "letter": (8.5, 11.0)}[paper]
    printed = driver.execute_cdp_cmd(
        "Page.printToPDF", {"paperWidth": width, "paperHeight": height, "preferCSSPageSize": False}
    )
    data = base64.b64decode(printed["data"])
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    (SCREENSHOT_DIR / f"print-{paper}.pdf").write_bytes(data)
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))
