"""The web app in a real browser: Debian's Chromium driven by Playwright, against a live
ductwork serving the built app (`npm --prefix web run build`, which `scripts/test` runs).

What exists of the app today is driven the way a person would: `/` lands on the sign-in
page, signing in with a password and with an API key (the field labelled exactly so),
the workflow list, a reload keeping the session, signing out, and no console errors on
the way. Screenshots go to `test-artifacts/` (gitignored) for the README and for
whoever reads a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.browser import open_browser, shot, unnamed_controls
from tests.support.live_server import LiveServer

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def browser_page() -> Iterator[Any]:
    yield from open_browser()


def test_sign_in_list_workflows_and_sign_out_in_chromium(tmp_path: Path, browser_page: Any) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with LiveServer(Settings(data_dir=tmp_path)) as live, live.client() as admin:
        user = {"email": "ada@example.com", "role": "editor", "password": PASSWORD}
        assert admin.post("/auth/users", json=user).status_code == 201
        workflow = {
            "name": "Seed workflow in the browser",
            "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
            "edges": [{"from": "start", "to": "end"}],
        }
        assert admin.post("/workflows/", json=workflow).status_code == 201
        key = admin.post("/auth/keys", json={"name": "browser", "role": "viewer"}).json()["key"]

        # `/` sends the browser to the app, which needs a session: the sign-in page.
        page.goto(live.url + "/")
        expect(page.get_by_role("heading", name="Sign in to ductwork")).to_be_visible()
        shot(page, "sign-in")
        assert unnamed_controls(page) == []

        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
        expect(page.get_by_role("cell", name="Seed workflow in the browser")).to_be_visible()
        shot(page, "workflows")
        assert unnamed_controls(page) == []

        page.reload()  # the session is a cookie: it survives a reload
        expect(page.get_by_role("cell", name="Seed workflow in the browser")).to_be_visible()

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in to ductwork")).to_be_visible()
        session = {c["name"] for c in page.context.cookies()}
        assert "dw_session" not in session

        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("cell", name="Seed workflow in the browser")).to_be_visible()

        # The browser's session is a real one: the API answers it, and nothing else.
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        with httpx.Client(base_url=live.url, cookies=cookies) as as_browser:
            assert as_browser.get("/workflows/").status_code == 200
        with httpx.Client(base_url=live.url) as anonymous:
            assert anonymous.get("/workflows/").status_code == 401
    assert page.console_errors == []


def test_the_setup_link_creates_the_admin_and_opens_the_app(
    tmp_path: Path, browser_page: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    with LiveServer(Settings(data_dir=tmp_path)) as live:
        token = live.call(live.app.accounts.issue_setup_token())
        assert token
        page.goto(f"{live.url}/setup?token={token}")
        page.get_by_label("Email").fill("root@example.com")
        page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
        page.get_by_role("button", name="Create admin").click()
        # The new admin lands in the app, signed in: no second sign-in.
        expect(page.get_by_role("heading", name="Workflows", exact=True)).to_be_visible()
        assert page.url == f"{live.url}/ui/"
        expect(page.get_by_label("Signed in as")).to_have_text("root@example.com")
    assert page.console_errors == []
