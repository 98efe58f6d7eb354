//! Backups never carry sealed job arguments: in job rows (`keel_jobs`, `keel_jobs_completed`) every sealed value (an
//! envelope `{"$sealed": …}`) is written as `"[sealed]"`, neither opened nor kept as
//! ciphertext, so a backup holds no personal data or secret from a job. A job restored with its
//! sealed values gone cannot run; the worker dead-letters it saying so.

use serde_json::Value;
use std::borrow::Cow;

/// The tables whose rows may hold sealed values. A completion erases a job's sealed values, so
/// `keel_jobs_completed` should hold none; it is scrubbed all the same, so a backup's promise
/// does not rest on that.
pub(super) const JOB_TABLES: &[&str] = &["keel_jobs", "keel_jobs_completed"];

/// `line` (one exported job row as JSON) with its payload's sealed values redacted.
/// PostgreSQL exports the payload as JSON, SQLite as JSON text; either comes back the same way.
pub(super) fn scrub_job_row(line: &str) -> Cow<'_, str> {
    if !line.contains("$sealed") {
        return Cow::Borrowed(line);
    }
    let Ok(mut row) = serde_json::from_str::<Value>(line) else { return Cow::Borrowed(line) };
    let Some(payload) = row.get_mut("payload") else { return Cow::Borrowed(line) };
    *payload = match &*payload {
        Value::String(text) => Value::String(keel_queue::redact_payload(text)),
        other => {
            let redacted = keel_queue::redact_payload(&other.to_string());
            serde_json::from_str(&redacted).unwrap_or(Value::String(keel_queue::SEALED_MARK.into()))
        }
    };
    Cow::Owned(row.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_become_the_mark_on_both_backends_shapes() {
        let pg = r#"{"id":"x","payload":{"email":{"$sealed":{"kid":"k1","ct":"AAAA"}},"n":1},"sealed":true}"#;
        let v: Value = serde_json::from_str(&scrub_job_row(pg)).unwrap();
        assert_eq!(v["payload"], serde_json::json!({"email": "[sealed]", "n": 1}));
        let sqlite = r#"{"id":"x","payload":"{\"$sealed\":{\"kid\":\"k1\",\"ct\":\"AAAA\"}}","sealed":1}"#;
        let v: Value = serde_json::from_str(&scrub_job_row(sqlite)).unwrap();
        assert_eq!(v["payload"], "\"[sealed]\"");
        let plain = r#"{"id":"x","payload":{"ms":5}}"#;
        assert!(matches!(scrub_job_row(plain), Cow::Borrowed(_)));
    }
}
