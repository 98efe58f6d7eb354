//! Payload envelopes: sealing the sensitive parts of a payload, opening them for the handler,
//! and the `[sealed]` view that every display, export and completed job gets instead.

use super::{Keyring, SealError, Sensitive};
use crate::JobId;
use serde_json::Value;

/// What a sealed value shows as outside the worker, and what it becomes once its job completes.
pub const SEALED_MARK: &str = "[sealed]";

const ENVELOPE: &str = "$sealed";

/// Associated data: the ciphertext opens only for the job, kind and field it was sealed for.
fn aad(kind: &str, id: JobId, field: Option<&str>) -> Vec<u8> {
    match field {
        None => format!("keel-queue sealed v1\0{kind}\0{id}\0payload").into_bytes(),
        Some(f) => format!("keel-queue sealed v1\0{kind}\0{id}\0field\0{f}").into_bytes(),
    }
}

fn envelope(ring: &Keyring, plaintext: &[u8], aad: &[u8]) -> Result<Value, SealError> {
    let (kid, ct) = ring.seal(plaintext, aad)?;
    Ok(serde_json::json!({ ENVELOPE: { "kid": kid, "ct": ct } }))
}

/// `{"$sealed": …}` and nothing else: an envelope, sealed or already erased.
fn is_envelope(v: &Value) -> bool {
    v.as_object().is_some_and(|o| o.len() == 1 && o.contains_key(ENVELOPE))
}

/// The key id and ciphertext of an intact envelope.
fn parts(v: &Value) -> Option<(&str, &str)> {
    let inner = v.get(ENVELOPE)?;
    Some((inner.get("kid")?.as_str()?, inner.get("ct")?.as_str()?))
}

/// Seals the sensitive part of `payload` (JSON text) for job `id` of `kind`.
pub(crate) fn seal_payload(
    ring: &Keyring,
    kind: &str,
    id: JobId,
    payload: &str,
    what: &Sensitive,
) -> Result<String, SealError> {
    let sealed = match what {
        Sensitive::Payload => envelope(ring, payload.as_bytes(), &aad(kind, id, None))?,
        Sensitive::Fields(fields) => {
            let mut v: Value =
                serde_json::from_str(payload).map_err(|e| SealError::Malformed(format!("payload is not JSON: {e}")))?;
            let Some(obj) = v.as_object_mut() else {
                return Err(SealError::Malformed(format!(
                    "job kind {kind:?} seals the fields {}, so its payload must be a JSON object",
                    fields.join(", ")
                )));
            };
            for f in fields {
                if let Some(value) = obj.get_mut(f) {
                    let plain = serde_json::to_vec(value).map_err(|e| SealError::Malformed(e.to_string()))?;
                    *value = envelope(ring, &plain, &aad(kind, id, Some(f)))?;
                }
            }
            v
        }
    };
    serde_json::to_string(&sealed).map_err(|e| SealError::Malformed(e.to_string()))
}

/// Opens every envelope of a sealed job's payload: the payload the handler sees.
pub(crate) fn open_payload(ring: Option<&Keyring>, kind: &str, id: JobId, payload: &str) -> Result<String, SealError> {
    let mut v: Value = serde_json::from_str(payload)
        .map_err(|e| SealError::Malformed(format!("the sealed payload is not JSON: {e}")))?;
    let ring = ring.ok_or_else(|| SealError::NoKeyring { kind: kind.to_owned() })?;
    if let Some((kid, ct)) = parts(&v) {
        let plain = ring.open(kid, ct, &aad(kind, id, None), "payload")?;
        return String::from_utf8(plain).map_err(|_| SealError::Malformed("the sealed payload is not text".into()));
    }
    let mut opened = 0;
    if let Some(obj) = v.as_object_mut() {
        for (name, value) in obj.iter_mut() {
            if let Some((kid, ct)) = parts(value) {
                let plain = ring.open(kid, ct, &aad(kind, id, Some(name)), name)?;
                *value = serde_json::from_slice(&plain)
                    .map_err(|_| SealError::Malformed(format!("the sealed field {name:?} is not JSON")))?;
                opened += 1;
            }
        }
    }
    if opened == 0 {
        return Err(SealError::Malformed(
            "this job is sealed but holds no ciphertext: its sealed values were erased (it completed) or left out \
             of the backup it was restored from; enqueue it again"
                .into(),
        ));
    }
    serde_json::to_string(&v).map_err(|e| SealError::Malformed(e.to_string()))
}

/// `payload` with every envelope (the whole payload, or a top-level field) replaced by
/// `"[sealed]"`: what CLIs, logs and backups show, and what a completed job keeps. Text that
/// is not JSON, or holds no envelope, comes back unchanged.
pub fn redact_payload(payload: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(payload) else { return payload.to_owned() };
    if is_envelope(&v) {
        return Value::String(SEALED_MARK.into()).to_string();
    }
    let mut changed = false;
    if let Some(obj) = v.as_object_mut() {
        for value in obj.values_mut().filter(|value| is_envelope(value)) {
            *value = Value::String(SEALED_MARK.into());
            changed = true;
        }
    }
    if changed {
        v.to_string()
    } else {
        payload.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobKey;

    fn ring(id: &str, b: u8) -> Keyring {
        let k = JobKey::parse(&format!(
            "{id}:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [b; 32])
        ));
        Keyring::new(k.unwrap(), []).unwrap()
    }

    #[test]
    fn fields_round_trip_and_show_as_sealed() {
        let r = ring("k1", 1);
        let id = JobId::generate();
        let plain = r#"{"email":"jane@example.com","n":3,"tags":["a"]}"#;
        let what = Sensitive::Fields(vec!["email".into(), "tags".into(), "absent".into()]);
        let sealed = seal_payload(&r, "auth.x", id, plain, &what).unwrap();
        assert!(
            !sealed.contains("jane") && sealed.contains("\"kid\":\"k1\"") && sealed.contains("\"n\":3"),
            "{sealed}"
        );
        let opened: Value = serde_json::from_str(&open_payload(Some(&r), "auth.x", id, &sealed).unwrap()).unwrap();
        assert_eq!(opened, serde_json::from_str::<Value>(plain).unwrap());
        let shown: Value = serde_json::from_str(&redact_payload(&sealed)).unwrap();
        assert_eq!(shown, serde_json::json!({"email": "[sealed]", "n": 3, "tags": "[sealed]"}));
        // Bound to the job and the field: another job id, kind or field does not open it.
        assert!(matches!(
            open_payload(Some(&r), "auth.x", JobId::generate(), &sealed),
            Err(SealError::Tampered { .. })
        ));
        assert!(matches!(open_payload(Some(&r), "auth.y", id, &sealed), Err(SealError::Tampered { .. })));
        let mut swapped: Value = serde_json::from_str(&sealed).unwrap();
        let e = swapped["email"].take();
        swapped["tags"] = e;
        swapped["email"] = Value::Null;
        assert!(matches!(open_payload(Some(&r), "auth.x", id, &swapped.to_string()), Err(SealError::Tampered { .. })));
        assert!(matches!(open_payload(None, "auth.x", id, &sealed), Err(SealError::NoKeyring { .. })));
        // Erased (completed, or exported): nothing left to open, said clearly.
        let e = open_payload(Some(&r), "auth.x", id, &redact_payload(&sealed)).unwrap_err();
        assert!(e.to_string().contains("erased"), "{e}");
    }

    #[test]
    fn whole_payloads_round_trip_and_non_objects_are_refused_for_fields() {
        let r = ring("k1", 1);
        let id = JobId::generate();
        let sealed = seal_payload(&r, "email.send", id, r#"{"to":"a@b.c"}"#, &Sensitive::Payload).unwrap();
        assert_eq!(open_payload(Some(&r), "email.send", id, &sealed).unwrap(), r#"{"to":"a@b.c"}"#);
        assert_eq!(redact_payload(&sealed), "\"[sealed]\"");
        let e = seal_payload(&r, "k.x", id, "[1]", &Sensitive::Fields(vec!["a".into()])).unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
        assert_eq!(redact_payload(r#"{"a":1}"#), r#"{"a":1}"#, "nothing sealed: unchanged");
        assert_eq!(redact_payload("not json"), "not json");
    }
}
