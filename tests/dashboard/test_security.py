"""The dashboard's guard, over real services: the token off loopback, the login cookie, Host
and Origin checks, CSRF, escaping, and the watched folders as the only place to read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_engineering.dashboard import Dashboard
from tests.adapters.fictional import fact_records
from tests.conftest import FACTS
from tests.dashboard.conftest import SCRIPT_NAME, client, csrf_of

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-token-for-the-dashboard"
PAGE = {"Accept": "text/html,application/xhtml+xml"}


def off_loopback(dashboard_factory) -> Dashboard:  # type: ignore[no-untyped-def]
    return dashboard_factory(host="0.0.0.0", token=TOKEN)


async def test_without_the_token_pages_ask_to_log_in_and_nothing_gives_data(
    dashboard_factory,  # type: ignore[no-untyped-def]
) -> None:
    dashboard = off_loopback(dashboard_factory)
    async with client(dashboard) as http:
        page = await http.get("/", headers=PAGE)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
        for url in (
            "/",
            "/search?q=glacier",
            f"/documents?path={FACTS['md'][0]}",
            "/documents",
            "/jobs",
            "/jobs/stream",
            "/overview/stream",
            "/adapters",
        ):
            refused = await http.get(url)
            assert refused.status_code == 401, url
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "xylophone" not in refused.text and "notes.md" not in refused.text
            wrong = await http.get(url, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401, url
        assert (await http.post("/jobs/x/cancel", data={"csrf": "x"})).status_code == 401
        login = await http.get("/login")
        assert login.status_code == 200 and 'type="password"' in login.text
        assert (await http.get("/static/dashboard.css")).status_code == 200
        with_bearer = await http.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert with_bearer.status_code == 200 and 'data-count="documents">7<' in with_bearer.text


async def test_the_login_form_sets_a_strict_http_only_cookie_that_opens_the_pages(
    dashboard_factory,  # type: ignore[no-untyped-def]
) -> None:
    dashboard = off_loopback(dashboard_factory)
    async with client(dashboard) as http:
        form = await http.get("/login?next=%2Fsearch")
        csrf = csrf_of(form.text)
        wrong = await http.post("/login", data={"csrf": csrf, "token": "nope", "next": "/search"})
        assert wrong.status_code == 401 and "wrong token" in wrong.text
        right = await http.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/search"})
        assert right.status_code == 303 and right.headers["location"] == "/search"
        cookie = right.headers["set-cookie"]
        assert cookie.startswith("llm_eng_session_8765=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        overview = await http.get("/", headers=PAGE)
        assert overview.status_code == 200 and 'data-count="documents">7<' in overview.text
        elsewhere = await http.post(
            "/login", data={"csrf": csrf, "token": TOKEN, "next": "//evil.example/x"}
        )
        assert elsewhere.headers["location"] == "/"
        out = await http.post("/logout", data={"csrf": csrf_of(overview.text)})
        assert out.status_code == 303
        assert (await http.get("/")).status_code == 401


async def test_a_cross_origin_or_tokenless_post_is_refused_and_a_foreign_host_too(
    dashboard_factory,  # type: ignore[no-untyped-def]
) -> None:
    dashboard = dashboard_factory()  # loopback, no token: the checks still apply
    training = dashboard.require().require_training()
    job = training.start_job("faq", records=fact_records(12))
    async with client(dashboard) as http:
        page = await http.get(f"/jobs/{job.id}")
        csrf = csrf_of(page.text)
        evil = await http.post(
            f"/jobs/{job.id}/cancel", data={"csrf": csrf}, headers={"Origin": "http://evil.example"}
        )
        assert evil.status_code == 403 and "other sites" in evil.text
        missing = await http.post(f"/jobs/{job.id}/cancel", data={})
        assert missing.status_code == 403 and "CSRF" in missing.text
        forged = await http.post(f"/jobs/{job.id}/cancel", data={"csrf": "0" * 64})
        assert forged.status_code == 403
        assert training.store.get(job.id).status == "queued"
        rebinding = await http.get("/", headers={"Host": "evil.example"})
        assert rebinding.status_code == 421
        ours = await http.post(
            f"/jobs/{job.id}/cancel",
            data={"csrf": csrf},
            headers={"Origin": "http://127.0.0.1:8765"},
        )
        assert ours.status_code == 303 and training.store.get(job.id).status == "cancelled"
    async with client(dashboard) as stranger:  # another browser: its own CSRF cookie
        await stranger.get("/")
        replayed = await stranger.post(f"/jobs/{job.id}/resume", data={"csrf": csrf})
        assert replayed.status_code == 403


async def test_every_response_forbids_inline_scripts_and_framing(dashboard_factory) -> None:  # type: ignore[no-untyped-def]
    async with client(dashboard_factory()) as http:
        for url in ("/", "/nothing-here", "/documents?path=/etc/passwd"):
            response = await http.get(url)
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
            assert response.headers["x-frame-options"] == "DENY"


async def test_a_script_named_file_renders_as_text(dashboard_factory, mixed_folder: Path) -> None:  # type: ignore[no-untyped-def]
    async with client(dashboard_factory()) as http:
        listing = (await http.get("/documents")).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.md" in listing
        assert "<script>alert" not in listing
        document = (await http.get(f"/documents?path={mixed_folder / SCRIPT_NAME}")).text
        assert "&lt;img src=x onerror=alert(2)&gt;" in document and "<img" not in document
        found = (await http.get("/search?q=marmalade+ledger&mode=keyword")).text
        assert "<mark>marmalade</mark>" in found and "&lt;script&gt;alert(1)" in found
        assert "<script>alert" not in found


async def test_nothing_outside_the_watched_folders_can_be_opened(
    dashboard_factory,  # type: ignore[no-untyped-def]
    mixed_folder: Path,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe vault code is 4417.\n")
    os.symlink(secret, mixed_folder / "link.md")
    async with client(dashboard_factory()) as http:
        for path in (
            "/etc/passwd",
            str(secret),
            f"{mixed_folder}/../secret.md",
            "../secret.md",
            str(mixed_folder / "link.md"),
        ):
            response = await http.get("/documents", params={"path": path})
            assert response.status_code == 404, path
            assert "4417" not in response.text and "root:" not in response.text
        retry = await http.get("/")
        forged = await http.post(
            "/documents/retry", data={"csrf": csrf_of(retry.text), "path": str(secret)}
        )
        assert forged.status_code == 404 and "outside the watched folders" in forged.text


async def test_repeated_wrong_tokens_wait_longer_each_time_but_the_right_one_opens(
    dashboard_factory,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llm_engineering.throttle import TokenThrottle
    from tests.test_throttle import ManualTime

    dashboard = off_loopback(dashboard_factory)
    time = ManualTime()
    dashboard.guard.throttle = TokenThrottle(time.clock, time.sleep)
    async with client(dashboard) as http:
        csrf = csrf_of((await http.get("/login")).text)
        with caplog.at_level("WARNING", logger="llm_engineering.throttle"):
            for _ in range(30):
                wrong = await http.post("/login", data={"csrf": csrf, "token": "guess"})
                assert wrong.status_code == 401
            bearer = await http.get("/", headers={"Authorization": "Bearer guess"})
            assert bearer.status_code == 401
        assert "wrong login token from 127.0.0.1 (30 in a row)" in caplog.text
        assert "wrong bearer token from 127.0.0.1 (31 in a row)" in caplog.text
        assert len(time.waits) == 31 - 5 and time.waits[-1] == 8.0
        right = await http.post("/login", data={"csrf": csrf, "token": TOKEN, "next": "/"})
        assert right.status_code == 303
    async with client(dashboard, peer=("192.0.2.4", 5555)) as other:
        await other.get("/login")
        waits = len(time.waits)
        assert (
            await other.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
        ).status_code == 200
        assert len(time.waits) == waits
