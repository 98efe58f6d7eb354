"""The console's verbs with the embedded worker running: retry a dead-lettered job, pause a
queue and see claims stop."""

from conftest import OPERATOR, sign_in

EMBEDDED_WORKER = True


def state_of(keel, job):
    return keel.job(job)["state"]


def test_retry_dead_job_and_see_it_pending(page, keel):
    # No worker handles this kind: it is dead-lettered on its first claim.
    job = keel.enqueue("console.unknown", {"n": 1})
    keel.wait_for("the job to be dead-lettered", lambda: state_of(keel, job) == "dead_letter")
    # Paused, so the worker cannot claim it again the moment it is pending.
    keel.ops("queue", "pause", "default", parse=False)
    try:
        sign_in(page, OPERATOR)
        page.goto("/console/jobs?state=dead_letter")
        page.click(f"tr[data-job='{job}'] a")
        assert page.get_by_test_id("job-state").inner_text() == "dead_letter"
        with page.expect_navigation():
            page.click("form.action[action$='/retry'] button")
        assert ("confirm", "Run this job again now?") in page.dialogs
        assert page.get_by_test_id("job-state").inner_text() == "pending"
        assert "Job retried" in page.inner_text("main")
        assert state_of(keel, job) == "pending"
    finally:
        keel.ops("queue", "resume", "default", parse=False)


def test_pause_queue_and_see_claims_stop(page, keel):
    sign_in(page, OPERATOR)
    page.goto("/console/queues")
    page.fill("input[name=name]", "default")
    with page.expect_navigation():
        page.click("form[action='/console/queues/pause'] button")
    assert page.locator("li[data-paused-queue='default']").count() == 1
    assert keel.ops("queue", "stats", "--json")["paused_queues"] == ["default"]
    held = keel.enqueue("demo.sleep", {"ms": 0})
    # A job on another queue is claimed and finishes: the worker is polling. Enqueued after
    # `held`, so by the time it is claimed, `held` would have been too if claims went on.
    control = keel.enqueue("webhook.deliver", {})
    keel.wait_for("the control job to be claimed", lambda: state_of(keel, control) != "pending")
    assert state_of(keel, held) == "pending"
    # Resumed from the console, the held job runs.
    with page.expect_navigation():
        page.click("li[data-paused-queue='default'] button")
    assert page.locator("li[data-paused-queue='default']").count() == 0
    keel.wait_for("the held job to complete", lambda: state_of(keel, held) == "completed")
