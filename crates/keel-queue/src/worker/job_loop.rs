//! One claim loop per queue: the claimer checks the switches (no I/O) and claims batches into
//! a local queue, refilling it when it is down to half a batch (so the next claim overlaps the
//! last jobs of the previous one), sized by the room left in hand; runners (`runners.rs`) run
//! queued jobs, up to the concurrency at once. Idle, the claimer sleeps until a wakeup or the
//! poll interval. Helper claimers (one to three, by batch size) add claims in flight while a
//! backlog starves the run slots.

use super::completer::Pending;
use super::metrics::bump;
use super::runners::{RunQueue, Starving};
use super::shared::{HandSlot, LoopAlive, Shared};
use super::QueueSettings;
use crate::{Claim, ClaimCursor, Job, PauseReason};
use keel_ids::mask_email;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Backoff while the database is unreachable: doubles from 100 ms, capped at 30 s.
pub(crate) const MAX_OUTAGE_BACKOFF: Duration = Duration::from_secs(30);

/// A claim of up to `limit` jobs (at most the batch size) for the loop `q`, after `after`.
pub(crate) fn claim_for(shared: &Shared, q: &QueueSettings, limit: u32, after: Option<ClaimCursor>) -> Claim {
    Claim {
        queue: q.queue.clone(),
        task: q.task.clone(),
        limit: limit.clamp(1, q.batch_size),
        lease: shared.settings.lease,
        worker: shared.settings.worker_id.clone(),
        after,
    }
}

/// Where the claim loop resumes (see [`Claim::after`]): the last job it claimed, kept while
/// no wakeup has come, the last claim was full, and the poll interval has not passed since
/// the loop last claimed from the start.
struct Resume {
    at: Option<ClaimCursor>,
    /// The wakeup generation and the time when the loop last claimed from the start.
    generation: u64,
    since: tokio::time::Instant,
}

impl Resume {
    fn new() -> Self {
        Self { at: None, generation: 0, since: tokio::time::Instant::now() }
    }

    /// The cursor for the next claim, `None` once something may sort before it.
    fn cursor(&mut self, generation: u64, poll: Duration) -> Option<ClaimCursor> {
        if self.at.is_some() && (generation != self.generation || self.since.elapsed() >= poll) {
            self.at = None;
        }
        self.at
    }

    /// After a claim from `after`, at `generation`, asked for `want` jobs and got `jobs`.
    /// Several claims may be in flight (see [`claim_loops`]), so a claim from a cursor
    /// moves it only forwards, and only if no one started over meanwhile.
    fn claimed(&mut self, generation: u64, after: Option<ClaimCursor>, want: usize, jobs: &[Job]) {
        if after.is_none() {
            self.generation = generation;
            self.since = tokio::time::Instant::now();
        }
        let last = jobs.last().map(ClaimCursor::of);
        self.at = if jobs.len() < want {
            // A short claim reached the end after its cursor: the next one starts over.
            None
        } else if after.is_none() {
            last
        } else {
            match (self.at, last) {
                (Some(at), Some(last)) => Some(if order(&last) > order(&at) { last } else { at }),
                _ => None,
            }
        };
    }
}

/// The claim order as a comparable key (uuids compare by their bytes, as both databases
/// order them).
fn order(c: &ClaimCursor) -> (i16, chrono::DateTime<chrono::Utc>, uuid::Uuid) {
    (c.priority, c.run_at, c.id.as_uuid())
}

/// Jobs the claims in flight of one queue aim to cover together: a claim's round trip is
/// about the same for 8 jobs as for 128 (PostgreSQL's fixed cost per statement), so smaller
/// batches get more claims in flight (see [`claim_loops`]).
const IN_FLIGHT_JOBS: u32 = 128;

/// At most this many claims in flight per queue: more only contended on the claim index
/// (batch 128 with four loops drained slower than with two, issue #19).
const MAX_CLAIM_LOOPS: u32 = 4;

/// Claim loops for a batch size: one primary and helpers, enough for [`IN_FLIGHT_JOBS`], at
/// least two and at most [`MAX_CLAIM_LOOPS`]. Helpers claim only while the run slots starve
/// in a backlog (see [`Backlog`]). Measured on a burn-down of no-op jobs (issue #19, ratios of
/// one run): batch 128 with one helper +8–12% at concurrency 8; the batch that follows the
/// concurrency (8) with three helpers +17–20% over one. Claims in flight never take the same
/// job (`SKIP LOCKED`, and SQLite's write turns).
pub(crate) fn claim_loops(batch: u32) -> usize {
    IN_FLIGHT_JOBS.div_ceil(batch.max(1)).clamp(2, MAX_CLAIM_LOOPS) as usize
}

/// When the helper loops claim: while the primary loop's last claim came back full (a
/// backlog) and a run slot is free with nothing queued to start (the claims cannot keep up;
/// [`Starving`]). Slow jobs keep the slots full, so their helpers stay parked and
/// a worker claims no more than one loop would, leaving the backlog to other workers.
struct Backlog {
    busy: std::sync::atomic::AtomicBool,
    changed: Notify,
}

impl Backlog {
    fn new() -> Self {
        Self { busy: false.into(), changed: Notify::new() }
    }

    fn helpers_may_claim(&self, starving: &Starving) -> bool {
        self.busy.load(Ordering::Acquire) && starving.is_on()
    }
}

/// Logs and counts a skipped tick; `skipped` is the count since the task's last run.
/// Every skip is counted; a claim loop ticks every poll interval, so while it stays paused
/// only its first skip and every 60th after reach the info level (the rest are debug).
pub(crate) fn log_skip(shared: &Shared, task: &str, reason: &str, skipped: u64) {
    shared.metrics.skipped_tick(task);
    if skipped == 1 || skipped % 60 == 0 {
        tracing::info!(
            event = "tick_skipped",
            task,
            reason,
            skipped_ticks = skipped,
            "paused: no work claimed this tick"
        );
    } else {
        tracing::debug!(
            event = "tick_skipped",
            task,
            reason,
            skipped_ticks = skipped,
            "paused: no work claimed this tick"
        );
    }
}

pub(crate) fn pause_text(p: &PauseReason) -> String {
    match p {
        PauseReason::Queue(q) => format!("queue {q} paused (keel-ops queue pause)"),
        PauseReason::Task(t) => format!("task paused (keel-ops cron pause {t})"),
    }
}

/// `claimed_batch`: debug normally, info when it is the first run after skipped ticks so
/// the skip count reaches the default log level.
pub(crate) fn log_claimed(q: &QueueSettings, count: usize, skipped: u64) {
    if skipped > 0 {
        tracing::info!(event = "claimed_batch", queue = %q.queue, task = %q.task, count, skipped_ticks = skipped);
    } else {
        tracing::debug!(event = "claimed_batch", queue = %q.queue, task = %q.task, count, skipped_ticks = 0u64);
    }
}

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = cancel.cancelled() => false,
    }
}

/// Finishes that may wait for the completer before a loop stops claiming: about a full
/// flush. With only a batch or two of room, a small batch (the default follows the
/// concurrency) stalled the loop on every commit: at concurrency 8 it drained a backlog at
/// about 1,000 jobs/s. At 256 the loop still waited on the completer, whose flushes (one
/// durable commit each, about 5 ms of WAL flush here) held some 180 finishes; at 1,024 they
/// grow towards the completer's 1,000 and the burn-down went from 34k to 38k jobs/s (issue
/// #19). Writing 1,000 finishes takes milliseconds, so a backlog of unwritten finishes still
/// cannot outlast a lease's 30 s.
const FINISH_ROOM: u32 = 1024;

/// The claim loop's bound on jobs in hand (claimed, not yet durably finished): the running
/// ones, the local queue (at most one and a half batches: it is refilled at half a batch),
/// and finishes waiting for the completer. It keeps a fast loop from claiming more than the
/// database absorbs, so leases never expire in a backlog of unwritten finishes.
pub(crate) fn hand_capacity(q: &QueueSettings) -> usize {
    (q.concurrency + 2 * q.batch_size + FINISH_ROOM) as usize
}

/// The local queue is refilled once it is down to this many jobs (half a batch), so the
/// next claim's round trip overlaps the last jobs of the previous batch instead of leaving
/// run slots idle.
fn low_water(q: &QueueSettings) -> usize {
    q.batch_size as usize / 2
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    q: QueueSettings,
    done_tx: mpsc::UnboundedSender<Pending>,
    tracker: TaskTracker,
    cancel: CancellationToken,
) {
    let _alive = LoopAlive::new(&shared.loops_running);
    // The local queue is unbounded: the hand semaphore already bounds what can be claimed.
    let runs = RunQueue::new(shared.clone(), q.concurrency as usize, low_water(&q), done_tx, tracker, cancel.clone());
    let claims = Claims {
        shared: &shared,
        q: &q,
        runs: &runs,
        hand: Arc::new(Semaphore::new(hand_capacity(&q))),
        resume: std::sync::Mutex::new(Resume::new()),
        backlog: Backlog::new(),
        cancel: &cancel,
    };
    let primary = claims.run(false);
    let helpers = futures::future::join_all((1..claim_loops(q.batch_size)).map(|_| claims.run(true)));
    tokio::join!(primary, helpers);
    // Claimed but never started: give them back for another worker now.
    runs.give_back_queued();
}

/// What the claim loops of one queue share: the bound on jobs in hand, where to resume, and
/// whether there is a backlog.
struct Claims<'a> {
    shared: &'a Arc<Shared>,
    q: &'a QueueSettings,
    runs: &'a Arc<RunQueue>,
    hand: Arc<Semaphore>,
    resume: std::sync::Mutex<Resume>,
    backlog: Backlog,
    cancel: &'a CancellationToken,
}

impl Claims<'_> {
    fn resume(&self) -> std::sync::MutexGuard<'_, Resume> {
        self.resume.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A helper waits here until the backlog starves the run slots.
    async fn backlog(&self) -> bool {
        loop {
            let changed = self.backlog.changed.notified();
            let starved = self.runs.starving.begun.notified();
            tokio::pin!(changed, starved);
            changed.as_mut().enable();
            starved.as_mut().enable();
            if self.backlog.helpers_may_claim(&self.runs.starving) {
                return true;
            }
            tokio::select! {
                _ = &mut changed => {}
                _ = &mut starved => {}
                _ = self.cancel.cancelled() => return false,
            }
        }
    }

    async fn run(&self, helper: bool) {
        claim_jobs(self, helper).await
    }
}

/// Claims batches into the local queue: when it is low and the hand has room, up to the
/// batch size or the room left, whichever is smaller.
/// The primary loop handles wakeups, polls and pauses; a helper (`helper`) claims only while
/// the backlog starves the run slots, and parks otherwise, so an idle queue (or one of slow
/// jobs) costs no more.
async fn claim_jobs(c: &Claims<'_>, helper: bool) {
    let (shared, q, runs, cancel) = (c.shared, c.q, c.runs, c.cancel);
    let hand = &c.hand;
    let notify = shared.store.wakeup().notify();
    let mut backoff = Duration::from_millis(100);
    'claiming: while !cancel.is_cancelled() {
        if helper && !c.backlog().await {
            break;
        }
        // Incident switches first: a switched-off tick touches no database connection.
        if let Some(var) = shared.switches.current().task_disabled_by(&q.task) {
            let skipped = shared.skip(&q.task);
            log_skip(shared, &q.task, &format!("{var}=true"), skipped);
            if !sleep_or_cancel(shared.poll, cancel).await {
                break;
            }
            continue;
        }
        // Prefetch: wait until the local queue is down to its low-water mark.
        loop {
            let low = runs.low.notified();
            tokio::pin!(low);
            low.as_mut().enable();
            if runs.waiting() <= low_water(q) {
                break;
            }
            tokio::select! {
                _ = &mut low => {}
                _ = cancel.cancelled() => break 'claiming,
            }
        }
        // Room in hand: at least one job, then whatever else is free up to the batch size.
        tokio::select! {
            p = hand.acquire_many(1) => match p { Ok(p) => p.forget(), Err(_) => break },
            _ = cancel.cancelled() => break,
        }
        // The switches again: the waits above can be long in a backlog, and a switch turned on
        // meanwhile must stop the next claim, not the one after.
        if shared.switches.current().task_disabled_by(&q.task).is_some() {
            hand.add_permits(1);
            continue;
        }
        let extra = hand.available_permits().min(q.batch_size as usize - 1);
        if let Ok(p) = hand.try_acquire_many(extra as u32) {
            p.forget();
        }
        let want = 1 + extra;
        // Armed before claiming, so a wakeup that lands while we claim is not lost.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let generation = shared.store.wakeup().generation();
        let after = c.resume().cursor(generation, shared.poll);
        let jobs = match shared.store.claim(claim_for(shared, q, want as u32, after)).await {
            Ok(j) => {
                backoff = Duration::from_millis(100);
                j
            }
            Err(e) => {
                hand.add_permits(want);
                bump(&shared.metrics.db_errors, 1);
                tracing::warn!(event = "queue_unavailable", queue = %q.queue, error = %mask_email(&e.to_string()),
                    retry_in_ms = backoff.as_millis() as u64, "cannot claim jobs; backing off");
                if !sleep_or_cancel(backoff, cancel).await {
                    break;
                }
                backoff = (backoff * 2).min(MAX_OUTAGE_BACKOFF);
                continue;
            }
        };
        hand.add_permits(want - jobs.len().min(want));
        c.resume().claimed(generation, after, want, &jobs);
        let full = jobs.len() >= want;
        if !helper {
            c.backlog.busy.store(full, Ordering::Release);
            if full {
                c.backlog.changed.notify_waiters();
            }
        } else if !full {
            c.backlog.busy.store(false, Ordering::Release);
        }
        if jobs.is_empty() && after.is_some() {
            // Nothing after the cursor: look again from the start before idling.
            continue;
        }
        if jobs.is_empty() && helper {
            continue;
        }
        if jobs.is_empty() {
            match shared.store.pause_reason(q.queue.clone(), q.task.clone()).await {
                Ok(Some(p)) => {
                    let skipped = shared.skip(&q.task);
                    log_skip(shared, &q.task, &pause_text(&p), skipped);
                }
                _ => {
                    bump(&shared.metrics.empty_runs, 1);
                    tracing::debug!(event = "empty_run", queue = %q.queue, task = %q.task);
                }
            }
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep(shared.poll) => {}
                _ = cancel.cancelled() => break,
            }
            continue;
        }
        bump(&shared.metrics.claimed, jobs.len() as u64);
        let skipped = shared.take_skipped(&q.task);
        log_claimed(q, jobs.len(), skipped);
        // Held (and so heartbeated) from the moment of the claim, not from their start.
        let held = shared.hold_all(&jobs);
        // Queued, with runners started for them (the slots are not starving now); a claim
        // that lands as the worker stops is given back by `run`.
        runs.push(jobs.into_iter().zip(held).filter_map(|(j, token)| Some((j, token?, HandSlot::new(hand.clone())))));
        // Let the runners just started take their jobs before this loop builds and sends its
        // next claim, instead of after (about 40 µs of an idle worker's enqueue-to-start,
        // issue #19).
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, JobState};
    use chrono::{TimeZone, Utc};

    fn job(priority: i16, n: u128) -> Job {
        let at = Utc.timestamp_millis_opt(1_000).single().unwrap_or_default();
        Job {
            id: JobId::from_uuid(uuid::Uuid::from_u128(n)),
            kind: "k".into(),
            queue: "default".into(),
            org: None,
            payload: "{}".into(),
            sealed: false,
            priority,
            state: JobState::Processing,
            run_at: at,
            attempt: 1,
            max_attempts: 3,
            dedupe_key: None,
            lease_seq: 1,
            lease_expires_at: Some(at),
            locked_by: None,
            last_error: None,
            created_at: at,
            updated_at: at,
            started_at: Some(at),
            finished_at: None,
            trace_context: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resume_keeps_the_cursor_only_while_nothing_can_sort_before_it() {
        let poll = Duration::from_secs(1);
        let mut r = Resume::new();
        assert_eq!(r.cursor(0, poll), None, "the first claim starts from the first runnable job");
        let full = [job(0, 1), job(0, 2)];
        let at = |j: &Job| Some(ClaimCursor::of(j));
        r.claimed(0, None, 2, &full);
        assert_eq!(r.cursor(0, poll), at(&full[1]), "a full claim resumes after its last job");

        // A wakeup (an enqueue, a retry, a rescue) may have made an earlier job runnable.
        assert_eq!(r.cursor(1, poll), None);
        r.claimed(1, None, 2, &full);
        assert!(r.cursor(1, poll).is_some());

        // A short claim reached the end: start over.
        r.claimed(1, at(&full[1]), 2, &full[..1]);
        assert_eq!(r.cursor(1, poll), None);

        // Kept across full claims, but never longer than the poll interval since the last
        // claim from the start (a job that became due meanwhile waits one poll at most).
        r.claimed(1, None, 2, &full);
        tokio::time::advance(Duration::from_millis(600)).await;
        r.claimed(1, at(&full[1]), 2, &full);
        assert!(r.cursor(1, poll).is_some(), "within the poll interval");
        tokio::time::advance(Duration::from_millis(400)).await;
        assert_eq!(r.cursor(1, poll), None, "the poll interval since the last claim from the start has passed");
    }

    /// Helpers claim only in a backlog whose claims cannot keep the run slots busy, and the
    /// runners' starving wakes them.
    #[tokio::test]
    async fn helpers_claim_only_while_a_backlog_starves_the_slots() {
        let (b, starving) = (Backlog::new(), Starving::new(false));
        assert!(!b.helpers_may_claim(&starving), "idle");
        b.busy.store(true, Ordering::Release);
        assert!(!b.helpers_may_claim(&starving), "a backlog, but the slots have work (slow jobs)");
        let woken = starving.begun.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        starving.set(true);
        assert!(b.helpers_may_claim(&starving), "a backlog and a free slot with nothing to start");
        tokio::time::timeout(Duration::from_secs(5), woken).await.expect("starving wakes the helpers");
        starving.set(false);
        assert!(!b.helpers_may_claim(&starving), "claimed jobs reached the runners");
        starving.set(true);
        b.busy.store(false, Ordering::Release);
        assert!(!b.helpers_may_claim(&starving), "the last claim came back short: no backlog");
    }

    #[test]
    fn claim_loops_cover_about_128_jobs_between_two_and_four_claims() {
        assert_eq!([1, 5, 8, 32, 43, 64, 128, 1000].map(claim_loops), [4, 4, 4, 4, 3, 2, 2, 2]);
    }

    /// Claims in flight (the helper loops) return in either order: the cursor only moves
    /// forwards, and a claim from a cursor does not undo a start-over that happened meanwhile.
    #[tokio::test(start_paused = true)]
    async fn two_claims_in_flight_move_the_cursor_only_forwards() {
        let poll = Duration::from_secs(1);
        let (early, late) = ([job(0, 1), job(0, 2)], [job(0, 3), job(0, 4)]);
        let at = |j: &Job| Some(ClaimCursor::of(j));
        let mut r = Resume::new();
        r.claimed(0, None, 2, &early);
        let from = r.cursor(0, poll);
        // Both claimed after `from`; the one that got the later jobs answered first.
        r.claimed(0, from, 2, &late);
        r.claimed(0, from, 2, &early);
        assert_eq!(r.cursor(0, poll), at(&late[1]), "the later of the two");
        // A wakeup restarted the order while a claim from the old cursor was in flight.
        let from = r.cursor(0, poll);
        assert_eq!(r.cursor(1, poll), None);
        r.claimed(1, from, 2, &late);
        assert_eq!(r.cursor(1, poll), None, "still starting over: an earlier job may be runnable");
        // Priority sorts before time and id.
        r.claimed(1, None, 2, &[job(0, 9), job(0, 10)]);
        let from = r.cursor(1, poll);
        r.claimed(1, from, 2, &[job(1, 1), job(1, 2)]);
        assert_eq!(r.cursor(1, poll), Some(ClaimCursor::of(&job(1, 2))), "a later priority sorts after");
    }
}
