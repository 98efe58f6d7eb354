"""The console without a worker (counts stay put): redirects, sign-in, the overview's counts,
escaping of hostile job arguments, the operator gate and CSRF refusals."""

import http.server
import threading

from playwright.sync_api import expect

from conftest import OPERATOR, OWNER, sign_in

EMBEDDED_WORKER = False

HOSTILE = {
    "note": "<script>alert(1)</script>",
    "attr": "\"><img src=x onerror=alert(1)>",
    "flag": "<script>window.__keel_xss = 1</script>",
}
STATES = ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"]


def test_signed_out_visit_redirects_to_sign_in(page):
    res = page.goto("/console/jobs")
    assert page.url.endswith("/console/sign-in"), page.url
    first = res.request.redirected_from
    assert first is not None and first.response().status == 303
    assert first.response().headers["location"] == "/console/sign-in"


def test_operator_signs_in(page):
    sign_in(page, OPERATOR)
    assert page.url.endswith("/console"), page.url
    assert page.locator("h1").inner_text() == "Overview"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["keel_session"]["httpOnly"] and cookies["keel_session"]["sameSite"] == "Lax"


def test_overview_counts_equal_queue_stats(page, keel):
    for i in range(3):
        keel.enqueue("console.count", {"n": i})
    sign_in(page, OPERATOR)
    stats = keel.ops("queue", "stats", "--json")

    def shown():
        page.reload()
        return {s: int(page.get_by_test_id(f"count-{s}").inner_text()) for s in STATES}

    # The overview reads the shared snapshot (at most one query per second here): reload until
    # it has caught up with the seeding, then it must match the CLI exactly.
    keel.wait_for("the overview to show the CLI's counts", lambda: shown() == {s: stats[s] for s in STATES})
    assert stats["pending"] >= 3


def test_overview_refreshes_itself(page, keel):
    sign_in(page, OPERATOR)
    pending = page.get_by_test_id("count-pending")
    before = int(pending.inner_text())
    keel.enqueue("console.live", {"n": 1})
    # No reload: console.js fetches the page every few seconds and swaps its content in.
    expect(pending).to_have_text(str(before + 1), timeout=20_000)
    assert page.evaluate("document.documentElement.hasAttribute('data-refreshed')")


def test_hostile_job_arguments_render_inert(page, keel):
    job = keel.enqueue("console.hostile", HOSTILE)
    sign_in(page, OPERATOR)
    page.goto(f"/console/jobs?kind=console.hostile")
    page.goto(f"/console/jobs/{job}")
    args = page.get_by_test_id("job-args").inner_text()
    for value in HOSTILE.values():
        assert value.replace('"', '\\"') in args, args
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("window.__keel_xss") is None
    assert page.dialogs == [], page.dialogs


def test_non_operator_org_owner_gets_403(page):
    sign_in(page, OWNER)
    res = page.goto("/console")
    assert res.status == 403
    assert "Not an operator" in page.content()
    assert page.goto("/console/jobs").status == 403
    # The 403 page lets the account sign out, to sign in as someone else.
    with page.expect_navigation():
        page.click("form[action='/console/sign-out'] button")
    assert page.url.endswith("/console/sign-in"), page.url
    assert "keel_session" not in {c["name"] for c in page.context.cookies()}


class Evil(http.server.BaseHTTPRequestHandler):
    """A page on another origin that posts to the console as soon as it loads."""
    target = ""

    def do_GET(self):
        body = (f'<form id="f" method="post" action="{self.target}/console/queues/default/pause">'
                f'<input name="name" value="default"></form><script>document.getElementById("f").submit()</script>')
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_cross_site_post_without_csrf_proof_is_refused(page, keel):
    sign_in(page, OPERATOR)
    Evil.target = keel.base
    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        with page.expect_response(lambda r: r.url.endswith("/console/queues/default/pause")) as posted:
            page.goto(f"http://127.0.0.1:{evil.server_port}/")
        assert posted.value.status == 403
    finally:
        evil.shutdown()
    # From the console's own origin, a POST without the token is refused too.
    page.goto("/console")
    status = page.evaluate("""() => fetch('/console/queues/default/pause', {method: 'POST',
        headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'name=default'}).then(r => r.status)""")
    assert status == 403
    assert keel.ops("queue", "stats", "--json")["paused_queues"] == []
