//! Conformance: the operator's verbs (pause, cancel, retry, requeue, list, snapshot, prune).

use crate::support::{claim_all, fixture};
use keel_ids::OrgId;
use keel_queue::{Clock, Finish, JobFilter, JobState, NewJob, Outcome, PauseReason, QueueError};
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::time::Duration;

backend_tests!(
    pause_and_resume_a_queue,
    cron_pause_of_the_task_stops_claims,
    cancel_only_waiting_jobs,
    retry_verb_revives_finished_jobs,
    requeue_dead_skips_keys_already_active,
    list_filters_by_state_kind_queue_and_org,
    snapshot_counts_states_kinds_and_waiting_age,
    prune_removes_old_completed_only,
);

async fn pause_and_resume_a_queue(t: TestDb) {
    let f = fixture(t);
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    f.store.pause_queue("default".into(), Some("ops".into())).await.unwrap();
    f.store.pause_queue("default".into(), None).await.unwrap();
    assert_eq!(f.store.paused_queues().await.unwrap(), vec!["default".to_string()]);
    assert!(claim_all(&f.store, "default", 10).await.is_empty());
    assert_eq!(
        f.store.pause_reason("default".into(), "background_job".into()).await.unwrap(),
        Some(PauseReason::Queue("default".into()))
    );
    assert_eq!(f.store.snapshot().await.unwrap().paused_queues, vec!["default".to_string()]);
    assert!(f.store.resume_queue("default".into()).await.unwrap());
    assert!(!f.store.resume_queue("default".into()).await.unwrap());
    assert_eq!(f.store.pause_reason("default".into(), "background_job".into()).await.unwrap(), None);
    assert_eq!(claim_all(&f.store, "default", 10).await.len(), 1);
}

async fn cron_pause_of_the_task_stops_claims(t: TestDb) {
    let f = fixture(t);
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap()).await.unwrap();
    f.store.cron_pause("all".into(), None).await.unwrap();
    assert!(claim_all(&f.store, "default", 10).await.is_empty());
    assert_eq!(
        f.store.pause_reason("default".into(), "background_job".into()).await.unwrap(),
        Some(PauseReason::Task("all".into()))
    );
    f.store.cron_resume("all".into()).await.unwrap();
    f.store.cron_pause("background_job".into(), None).await.unwrap();
    assert!(claim_all(&f.store, "default", 10).await.is_empty());
    f.store.cron_pause("webhook_delivery".into(), None).await.unwrap();
    assert!(f.store.cron_resume("background_job".into()).await.unwrap());
    assert_eq!(claim_all(&f.store, "default", 10).await.len(), 1, "another task's pause does not stop this loop");
}

async fn cancel_only_waiting_jobs(t: TestDb) {
    let f = fixture(t);
    let a = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("k")).await.unwrap().id();
    let job = f.store.cancel(a).await.unwrap();
    assert_eq!(job.state, JobState::Cancelled);
    assert!(!f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("k")).await.unwrap().is_duplicate());
    let err = f.store.cancel(a).await.unwrap_err();
    assert!(matches!(err, QueueError::WrongState { state: JobState::Cancelled, .. }), "{err}");
    let b = claim_all(&f.store, "default", 1).await[0].id;
    let err = f.store.cancel(b).await.unwrap_err();
    assert!(err.to_string().contains("is processing; cancel needs a job that is pending or retrying"), "{err}");
    let missing = keel_queue::JobId::generate();
    assert!(matches!(f.store.cancel(missing).await, Err(QueueError::NotFound(id)) if id == missing));
}

async fn retry_verb_revives_finished_jobs(t: TestDb) {
    let f = fixture(t);
    let id =
        f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(1).dedupe_key("d")).await.unwrap().id();
    let lease = claim_all(&f.store, "default", 1).await[0].lease().unwrap();
    f.store.finish(vec![Finish { lease, outcome: Outcome::Failed { error: "x".into() } }]).await.unwrap();
    // While another job holds the key, reviving this one would break dedupe: refused.
    let holder = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("d")).await.unwrap().id();
    let err = f.store.retry(id).await.unwrap_err();
    assert!(matches!(&err, QueueError::DedupeConflict { existing, .. } if *existing == holder), "{err}");
    f.store.cancel(holder).await.unwrap();
    let job = f.store.retry(id).await.unwrap();
    assert_eq!((job.state, job.attempt, job.finished_at), (JobState::Pending, 0, None));
    // A scheduled job is made due now.
    let later = f.clock.now() + chrono::Duration::hours(1);
    let s = f.store.enqueue(NewJob::new("k.y", &json!({})).unwrap().run_at(later)).await.unwrap().id();
    assert_eq!(f.store.retry(s).await.unwrap().run_at, f.clock.now());
    let c = claim_all(&f.store, "default", 5).await;
    assert_eq!(c.len(), 2);
    let err = f.store.retry(c[0].id).await.unwrap_err();
    assert!(matches!(err, QueueError::WrongState { state: JobState::Processing, .. }));
}

async fn requeue_dead_skips_keys_already_active(t: TestDb) {
    let f = fixture(t);
    for key in ["a", "b", "c"] {
        f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(1).dedupe_key(key)).await.unwrap();
    }
    f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().max_attempts(1)).await.unwrap();
    f.store.enqueue(NewJob::new("k.other", &json!({})).unwrap().max_attempts(1)).await.unwrap();
    for j in claim_all(&f.store, "default", 10).await {
        f.store
            .finish(vec![Finish { lease: j.lease().unwrap(), outcome: Outcome::DeadLetter { error: "x".into() } }])
            .await
            .unwrap();
    }
    let active_b = f.store.enqueue(NewJob::new("k.x", &json!({})).unwrap().dedupe_key("b")).await.unwrap().id();
    let rep = f.store.requeue_dead(Some("k.x".into())).await.unwrap();
    assert_eq!(rep.requeued, 3, "a, c and the unkeyed job");
    assert_eq!(rep.skipped_duplicates.len(), 1);
    assert_eq!(f.store.get(rep.skipped_duplicates[0]).await.unwrap().unwrap().state, JobState::DeadLetter);
    assert_eq!(f.store.get(active_b).await.unwrap().unwrap().state, JobState::Pending);
    let snap = f.store.snapshot().await.unwrap();
    assert_eq!(snap.counts.dead_letter, 2, "the skipped one and the other kind");
    assert_eq!(f.store.requeue_dead(None).await.unwrap().requeued, 1);
}

async fn list_filters_by_state_kind_queue_and_org(t: TestDb) {
    let f = fixture(t);
    let org = OrgId::generate();
    let a = f.store.enqueue(NewJob::new("k.a", &json!({})).unwrap().org(org)).await.unwrap().id();
    let b = f.store.enqueue(NewJob::new("k.b", &json!({})).unwrap().queue("q2")).await.unwrap().id();
    let c = f.store.enqueue(NewJob::new("k.a", &json!({})).unwrap()).await.unwrap().id();
    let ids = |v: Vec<keel_queue::Job>| v.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(ids(f.store.list(JobFilter::default()).await.unwrap()), vec![c, b, a], "newest first");
    assert_eq!(
        ids(f.store.list(JobFilter { kind: Some("k.a".into()), ..Default::default() }).await.unwrap()),
        vec![c, a]
    );
    assert_eq!(ids(f.store.list(JobFilter { queue: Some("q2".into()), ..Default::default() }).await.unwrap()), vec![b]);
    assert_eq!(ids(f.store.list(JobFilter { org: Some(org), ..Default::default() }).await.unwrap()), vec![a]);
    f.store.cancel(c).await.unwrap();
    assert_eq!(
        ids(f.store.list(JobFilter { state: Some(JobState::Cancelled), ..Default::default() }).await.unwrap()),
        vec![c]
    );
    assert_eq!(f.store.list(JobFilter { limit: Some(1), ..Default::default() }).await.unwrap().len(), 1);
}

async fn snapshot_counts_states_kinds_and_waiting_age(t: TestDb) {
    let f = fixture(t);
    let empty = f.store.snapshot().await.unwrap();
    assert_eq!((empty.counts.total(), empty.oldest_pending_age_s), (0, 0.0));
    f.store.enqueue(NewJob::new("k.a", &json!({})).unwrap()).await.unwrap();
    f.clock.advance(Duration::from_secs(30));
    f.store.enqueue(NewJob::new("k.b", &json!({})).unwrap()).await.unwrap();
    f.store
        .enqueue(NewJob::new("k.b", &json!({})).unwrap().run_at(f.clock.now() + chrono::Duration::hours(1)))
        .await
        .unwrap();
    f.store.enqueue(NewJob::new("k.b", &json!({})).unwrap().queue("slow")).await.unwrap();
    claim_all(&f.store, "slow", 1).await;
    f.clock.advance(Duration::from_secs(45));
    let s = f.store.snapshot().await.unwrap();
    assert_eq!(s.counts.pending, 3);
    assert_eq!(s.counts.processing, 1);
    assert_eq!(s.by_kind["k.a"].pending, 1);
    assert_eq!(s.by_kind["k.b"].pending, 2);
    assert_eq!(s.by_kind["k.b"].processing, 1);
    assert_eq!(s.oldest_pending_age_s, 75.0, "the first job has waited 75 s; the future one is not counted");
    assert_eq!(s.expired_leases, 1, "the claimed job's 30 s lease ran out");
    let v = serde_json::to_value(&s).unwrap();
    for key in
        ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled", "oldest_pending_age_s"]
    {
        assert!(v.get(key).is_some(), "queue stats --json has {key}: {v}");
    }
}

async fn prune_removes_old_completed_only(t: TestDb) {
    let f = fixture(t);
    for i in 0..4 {
        f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    let jobs = claim_all(&f.store, "default", 4).await;
    let fin = |i: usize, outcome| Finish { lease: jobs[i].lease().unwrap(), outcome };
    f.store
        .finish(vec![
            fin(0, Outcome::Completed),
            fin(1, Outcome::Failed { error: "x".into() }),
            fin(2, Outcome::DeadLetter { error: "x".into() }),
        ])
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(8 * 86_400));
    f.store.finish(vec![fin(3, Outcome::Completed)]).await.unwrap();
    assert_eq!(f.store.prune(Duration::from_secs(7 * 86_400)).await.unwrap(), 1);
    let s = f.store.snapshot().await.unwrap();
    assert_eq!((s.counts.completed, s.counts.failed, s.counts.dead_letter), (1, 1, 1));
    assert!(f.store.get(jobs[0].id).await.unwrap().is_none());
}
