"""Debian's Chromium driven by Playwright for the browser tests (tests/test_web_*.py).

No browser download works on this machine: Playwright for Python drives the `chromium`
package through `executable_path` (scripts/test installs it). Missing pieces skip the
tests, or fail them under CI=true (`service_unavailable`).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from tests.support.stores import service_unavailable

UI_DIST = Path(__file__).resolve().parents[2] / "src" / "ductwork" / "ui_dist"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this machine's closed network refuses, many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        service_unavailable("Debian's chromium is not installed (scripts/test installs it)")
    return path


def open_browser(
    viewport: tuple[int, int] = (1280, 800),
    color_scheme: Literal["light", "dark"] = "light",
) -> Iterator[Any]:
    """A page in headless Chromium that records console errors, failed requests and
    page errors in `page.console_errors`; 401s, and the (status, path) pairs a test adds
    to `page.expected_failures`, are not errors."""
    if not (UI_DIST / "index.html").is_file():
        service_unavailable("the web app is not built: npm --prefix web run build")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        service_unavailable("playwright is not installed (pyproject's test extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=color_scheme
        )
        # Assertions poll until they hold; their deadline is a safety net for a loaded
        # CI, not a timing claim (bench/web_ui.py measures timings).
        context.set_default_timeout(30_000)
        expect.set_options(timeout=20_000)
        page = context.new_page()
        errors: list[str] = []
        # Answers a test provokes on purpose, as (status, path): not errors. 401s always
        # are expected: they are how the app learns it must sign in.
        expected: set[tuple[int, str]] = set()

        def unexpected(status: int, url: str) -> bool:
            path = urlsplit(url).path
            return status != 401 and (status, path) not in expected

        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            # Chromium's own line for a failed request names its status and, in the
            # location, its URL.
            failed = re.search(r"status of (\d{3})", message.text)
            if failed and not unexpected(int(failed[1]), message.location.get("url", "")):
                return
            if "401" in message.text:
                return
            errors.append(f"console {message.type}: {message.text}")

        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("console", on_console)
        # Which request failed (the console only says that one did).
        page.on(
            "response",
            lambda response: (
                errors.append(f"{response.status} {response.url}")
                if response.status >= 400 and unexpected(response.status, response.url)
                else None
            ),
        )
        page.expected_failures = expected  # type: ignore[attr-defined]
        page.console_errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            context.close()
            browser.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# Roles a person operates; each must have a name a screen reader can say.
CONTROL_ROLES = frozenset(
    {
        "button",
        "checkbox",
        "combobox",
        "link",
        "listbox",
        "menuitem",
        "radio",
        "searchbox",
        "slider",
        "spinbutton",
        "switch",
        "tab",
        "textbox",
    }
)


def unnamed_controls(page: Any) -> list[str]:
    """Controls on the page without an accessible name, as Chromium computes names
    (its accessibility tree over CDP): `role <tag#id.class>` for each."""
    cdp = page.context.new_cdp_session(page)
    try:
        tree = cdp.send("Accessibility.getFullAXTree")["nodes"]
        found = []
        for item in tree:
            role = (item.get("role") or {}).get("value")
            name = (item.get("name") or {}).get("value")
            if item.get("ignored") or role not in CONTROL_ROLES or (name or "").strip():
                continue
            described = cdp.send("DOM.describeNode", {"backendNodeId": item["backendDOMNodeId"]})[
                "node"
            ]
            attributes = described.get("attributes", [])
            pairs = dict(zip(attributes[::2], attributes[1::2], strict=False))
            label = described.get("localName", "?")
            if pairs.get("id"):
                label += f"#{pairs['id']}"
            if pairs.get("class"):
                label += "." + ".".join(pairs["class"].split()[:3])
            found.append(f"{role} <{label}>")
        return found
    finally:
        cdp.detach()
