"""Browser tests of the operator console: the real keel-api binary on a fresh SQLite database,
seeded with the real keel-ops CLI, driven by Playwright in Debian's Chromium (no browser
download). Run by `cargo xtask browser` (and `cargo xtask ci`), which builds the binaries and
passes their paths in KEEL_API_BIN / KEEL_OPS_BIN, the browser in KEEL_CHROMIUM and the
screenshot folder in KEEL_BROWSER_OUT.

One server per test module (module-scoped fixture); each test gets a fresh browser context
(cookies) and saves a screenshot named after itself when it ends, pass or fail."""

import json
import os
import pathlib
import queue
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
from playwright.sync_api import sync_playwright

API_BIN = os.environ["KEEL_API_BIN"]
OPS_BIN = os.environ["KEEL_OPS_BIN"]
CHROMIUM = os.environ.get("KEEL_CHROMIUM", "/usr/bin/chromium")
OUT = pathlib.Path(os.environ.get("KEEL_BROWSER_OUT", "target/browser"))

PASSWORD = "console browser test password"
OPERATOR = "operator@example.com"
OWNER = "owner@example.com"
# How long keel-api may take to log that it listens (a debug build on a busy 2-core machine).
STARTUP_TIMEOUT_S = 60
# How long a condition polled through the CLI may take to come true (a worker claim cycle).
CONDITION_TIMEOUT_S = 30


def clean_env():
    """The caller's own Keel settings (a production KEEL_ENV, a Postgres URL) must not leak in."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("KEEL_") or k in ("DATABASE_URL", "INTERNAL_API_SECRET", "RUST_LOG"))}
    return env


class Keel:
    """A migrated SQLite database, the keel-ops CLI against it, and a running keel-api."""

    def __init__(self, folder, worker):
        self.folder = folder
        self.db = f"sqlite://{folder}/keel.db"
        self.worker = worker
        self.proc = None
        self.base = None
        self.log_path = pathlib.Path(folder) / "keel-api.log"

    def ops(self, *args, stdin=None, parse=True):
        env = clean_env()
        env["DATABASE_URL"] = self.db
        done = subprocess.run([OPS_BIN, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"keel-ops {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return json.loads(done.stdout) if parse else done.stdout

    def seed(self):
        self.ops("migrate", parse=False)
        org = self.ops("org", "create", "Browser Org", "--json")["id"]
        for email in (OPERATOR, OWNER):
            self.ops("user", "create", "--email", email, "--org", org, "--role", "owner", "--password-stdin", "--json",
                     stdin=PASSWORD)
        self.ops("operator", "grant", OPERATOR, parse=False)

    def start(self):
        env = clean_env()
        env.update({
            "DATABASE_URL": self.db,
            "KEEL_BIND": "127.0.0.1:0",
            "KEEL_METRICS_BIND": "127.0.0.1:0",
            "KEEL_LOG_FORMAT": "json",
            "RUST_LOG": "info",
            "KEEL_EMBEDDED_WORKER": "true" if self.worker else "false",
            # The overview reads the shared snapshot; the shortest interval keeps the count test quick.
            "KEEL_METRICS_SNAPSHOT_INTERVAL": "1s",
        })
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([API_BIN], env=env, cwd=self.folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        found = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                if '"message":"listening"' in line:
                    try:
                        record = json.loads(line)
                        found.put(record.get("addr") or record.get("fields", {}).get("addr"))
                    except ValueError:
                        found.put(None)
            log.close()

        threading.Thread(target=pump, daemon=True).start()
        try:
            addr = found.get(timeout=STARTUP_TIMEOUT_S)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"keel-api did not log 'listening' in {STARTUP_TIMEOUT_S} s; log: {self.log_path}")
        assert addr, f"keel-api logged 'listening' without an addr; log: {self.log_path}"
        self.base = f"http://{addr}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def job(self, job_id):
        return self.ops("queue", "show", job_id)

    def enqueue(self, kind, payload):
        out = self.ops("queue", "enqueue", "--kind", kind, "--payload", json.dumps(payload), "--json")
        return out["enqueued"][0]["id"]

    def wait_for(self, what, condition):
        """Polls `condition` (through the CLI) until it holds; fails after CONDITION_TIMEOUT_S."""
        deadline = time.monotonic() + CONDITION_TIMEOUT_S
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)


def keel_server(worker):
    folder = tempfile.mkdtemp(prefix="keel-browser-")
    keel = Keel(folder, worker)
    keel.seed()
    keel.start()
    return keel, folder


@pytest.fixture(scope="module")
def keel(request):
    worker = getattr(request.module, "EMBEDDED_WORKER", False)
    k, folder = keel_server(worker)
    yield k
    k.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # Chromium's sandbox needs user namespaces, which a root CI container does not give.
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, keel, request):
    context = browser.new_context(base_url=keel.base)
    pg = context.new_page()
    pg.dialogs = []

    def on_dialog(d):
        pg.dialogs.append((d.type, d.message))
        d.accept()

    pg.on("dialog", on_dialog)
    yield pg
    pg.screenshot(path=str(OUT / f"{request.node.name}.png"), full_page=True)
    context.close()


def sign_in(page, email):
    page.goto("/console/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
