//! Sealed job arguments on both backends: sealed at enqueue, opened only for the handler,
//! shown as `[sealed]`, erased on completion, and opened across a key rotation.

use crate::worker::settings;
use keel_queue::worker::Tick;
use keel_queue::{
    open_with, Finish, Finished, JobArgs, JobContext, JobFilter, JobKey, JobState, Keyring, KindOptions, Lease,
    ManualClock, NewJob, Outcome, QueueError, Registry, SealError, Store, StoreOptions, Worker,
};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

backend_tests!(
    sealed_fields_round_trip_and_are_erased_on_completion,
    whole_payloads_seal_in_bulk_and_refuse_without_a_keyring,
    a_rotated_key_still_opens_when_listed_and_fails_clearly_when_not,
    a_batch_of_completions_holding_a_sealed_job_erases_it_and_completes_them_all,
);

const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn ring(current: &str, older: &[&str]) -> Arc<Keyring> {
    let older = older.iter().map(|k| JobKey::parse(k).unwrap());
    Arc::new(Keyring::new(JobKey::parse(current).unwrap(), older).unwrap())
}

fn store(t: &TestDb, keyring: Option<Arc<Keyring>>) -> Arc<dyn Store> {
    let opts = StoreOptions { keyring, ..StoreOptions::default() };
    open_with(t.db.clone(), Arc::new(ManualClock::at_epoch_2030()), opts)
}

#[derive(Serialize, Deserialize)]
struct Notify {
    email: String,
    note: String,
}

impl JobArgs for Notify {
    const KIND: &'static str = "notify.user";
    fn options() -> KindOptions {
        KindOptions::default().sealed_fields(&["email"])
    }
}

/// Every stored payload of the job table as text, straight from the database.
async fn stored(db: &Db) -> String {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar::<_, String>(
            "SELECT payload || coalesce(last_error, '') FROM keel_jobs \
             UNION ALL SELECT payload || coalesce(last_error, '') FROM keel_jobs_completed",
        )
        .fetch_all(p)
        .await
        .unwrap(),
        Db::Postgres(p) => sqlx::query_scalar::<_, String>(
            "SELECT payload::text || coalesce(last_error, '') FROM keel_jobs \
                 UNION ALL SELECT payload::text || coalesce(last_error, '') FROM keel_jobs_completed",
        )
        .fetch_all(p)
        .await
        .unwrap(),
    }
    .join("\n")
}

fn recording(seen: &Arc<Mutex<Vec<String>>>) -> Registry {
    let mut reg = Registry::new();
    let s = seen.clone();
    reg.register(move |n: Notify, _ctx: JobContext| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(n.email);
            Ok(())
        }
    })
    .unwrap();
    reg
}

async fn sealed_fields_round_trip_and_are_erased_on_completion(t: TestDb) {
    let st = store(&t, Some(ring(K1, &[])));
    let args = Notify { email: "jane@example.com".into(), note: "hello".into() };
    let id = st.enqueue(NewJob::args(&args).unwrap()).await.unwrap().id();
    let raw = stored(&t.db).await;
    assert!(!raw.contains("jane"), "the address is stored sealed: {raw}");
    assert!(raw.contains("hello") && raw.contains("k1"), "the rest stays readable, the key id beside: {raw}");
    let job = st.get(id).await.unwrap().unwrap();
    assert!(job.sealed);
    let shown = serde_json::to_value(&job).unwrap();
    let payload: serde_json::Value = serde_json::from_str(shown["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, serde_json::json!({"email": "[sealed]", "note": "hello"}), "serialized for tools");
    let listed = serde_json::to_string(&st.list(JobFilter::default()).await.unwrap()).unwrap();
    assert!(listed.contains("[sealed]") && !listed.contains("\"ct\""), "{listed}");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let w = Worker::new(st.clone(), recording(&seen), settings(1, 10));
    assert!(matches!(w.tick("default").await.unwrap(), Tick::Ran { .. }));
    assert_eq!(*seen.lock().unwrap(), ["jane@example.com"], "the handler gets the opened value");
    let done = st.get(id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Completed);
    let after: serde_json::Value = serde_json::from_str(&done.payload).unwrap();
    assert_eq!(after, serde_json::json!({"email": "[sealed]", "note": "hello"}), "erased on completion");
    let raw = stored(&t.db).await;
    assert!(!raw.contains("\"ct\"") && !raw.contains("jane"), "no ciphertext left: {raw}");
}

async fn whole_payloads_seal_in_bulk_and_refuse_without_a_keyring(t: TestDb) {
    let bare = store(&t, None);
    let e = bare.enqueue(NewJob::new("mail.x", &serde_json::json!({"to": "a@b.co"})).unwrap().sealed()).await;
    assert!(matches!(e, Err(QueueError::Seal(SealError::NoKeyring { .. }))), "{e:?}");
    assert!(e.unwrap_err().to_string().contains("KEEL_JOB_ENCRYPTION_KEY"));
    assert!(stored(&t.db).await.is_empty(), "nothing stored in clear instead");

    let st = store(&t, Some(ring(K1, &[])));
    let jobs = (0..3)
        .map(|i| NewJob::new("mail.x", &serde_json::json!({"to": format!("user{i}@example.com")})).unwrap().sealed())
        .collect();
    let ids: Vec<_> = st.enqueue_many(jobs).await.unwrap().into_iter().map(|e| e.id()).collect();
    assert!(!stored(&t.db).await.contains("example.com"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut reg = Registry::new();
    let s = seen.clone();
    reg.register_json("mail.x", KindOptions::default(), move |v, _| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(v["to"].as_str().unwrap_or_default().to_owned());
            Ok(())
        }
    })
    .unwrap();
    let w = Worker::new(st.clone(), reg, settings(4, 10));
    w.tick("default").await.unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(got, ["user0@example.com", "user1@example.com", "user2@example.com"]);
    for id in ids {
        let j = st.get(id).await.unwrap().unwrap();
        assert_eq!((j.state, j.payload.as_str()), (JobState::Completed, "\"[sealed]\""));
    }
}

async fn a_rotated_key_still_opens_when_listed_and_fails_clearly_when_not(t: TestDb) {
    let before = store(&t, Some(ring(K1, &[])));
    let a = before.enqueue(NewJob::args(&Notify { email: "a@example.com".into(), note: "".into() }).unwrap()).await;
    let b = before.enqueue(NewJob::args(&Notify { email: "b@example.com".into(), note: "".into() }).unwrap()).await;
    let (a, b) = (a.unwrap().id(), b.unwrap().id());
    let seen = Arc::new(Mutex::new(Vec::new()));

    // Rotated without listing the old key: the job cannot open, and says which key it needs.
    let forgot = store(&t, Some(ring(K2, &[])));
    let w = Worker::new(forgot.clone(), recording(&seen), settings(1, 1));
    w.tick("default").await.unwrap();
    let dead = forgot.get(a).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::DeadLetter);
    let err = dead.last_error.unwrap();
    assert!(err.contains("\"k1\"") && err.contains("KEEL_JOB_DECRYPTION_KEYS"), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "the handler never ran");

    // Rotated with the old key listed for opening: it runs, and new jobs seal with the new key.
    let rotated = store(&t, Some(ring(K2, &[K1])));
    let w = Worker::new(rotated.clone(), recording(&seen), settings(1, 1));
    w.tick("default").await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["b@example.com"]);
    assert_eq!(rotated.get(b).await.unwrap().unwrap().state, JobState::Completed);
    rotated.retry(a).await.unwrap();
    w.tick("default").await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["b@example.com", "a@example.com"], "the dead job runs once the key is listed");
    rotated.enqueue(NewJob::args(&Notify { email: "c@example.com".into(), note: "".into() }).unwrap()).await.unwrap();
    assert!(stored(&t.db).await.contains("\"k2\""), "new jobs seal with the current key");
}

/// A batch of completions runs as one statement unless it holds a sealed job, whose values must
/// be erased in the transaction that completes it: that statement must then change nothing,
/// and the general path complete them all (a stale lease among them stays stale).
async fn a_batch_of_completions_holding_a_sealed_job_erases_it_and_completes_them_all(t: TestDb) {
    let st = store(&t, Some(ring(K1, &[])));
    let args = Notify { email: "jane@example.com".into(), note: "hello".into() };
    let sealed = st.enqueue(NewJob::args(&args).unwrap()).await.unwrap().id();
    let plain = st.enqueue(NewJob::new("k.plain", &serde_json::json!({"n": 1})).unwrap()).await.unwrap().id();
    let gone = st.enqueue(NewJob::new("k.plain", &serde_json::json!({"n": 2})).unwrap()).await.unwrap().id();
    let jobs = st.claim(crate::support::claim("default", 3)).await.unwrap();
    assert_eq!(jobs.len(), 3);
    let lease = |id| jobs.iter().find(|j| j.id == id).unwrap().lease().unwrap();
    let stale = Lease { token: lease(gone).token - 1, ..lease(gone) };
    let batch: Vec<Finish> = [lease(plain), lease(sealed), stale]
        .into_iter()
        .map(|lease| Finish { lease, outcome: Outcome::Completed })
        .collect();
    let done = st.finish(batch).await.unwrap();
    let completed = Finished::Accepted(JobState::Completed);
    assert_eq!(done, vec![completed, completed, Finished::Stale]);
    let erased: serde_json::Value = serde_json::from_str(&st.get(sealed).await.unwrap().unwrap().payload).unwrap();
    assert_eq!(erased, serde_json::json!({"email": "[sealed]", "note": "hello"}), "erased on completion");
    assert_eq!(st.get(plain).await.unwrap().unwrap().payload_value(), serde_json::json!({"n": 1}));
    assert_eq!(st.get(gone).await.unwrap().unwrap().state, JobState::Processing, "the stale lease changed nothing");
}
