//! Unit tests for parsing and masking.

use super::*;

#[test]
fn org_id_parses_and_rejects() {
    let id = OrgId::generate();
    assert_eq!(OrgId::parse(&id.to_string()).unwrap(), id);
    let err = OrgId::parse("not-a-uuid").unwrap_err();
    assert!(err.to_string().contains("org id must be a UUID"), "{err}");
    let j: Result<OrgId, _> = serde_json::from_str("\"nope\"");
    assert!(j.is_err());
}

#[test]
fn email_normalises_and_masks() {
    let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
    assert_eq!(e.as_str(), "jane.doe@example.com");
    assert_eq!(e.to_string(), "j***@example.com");
    assert_eq!(format!("{e:?}"), "Email(j***@example.com)");
    for bad in ["", "a", "@x.com", "a@b", "a@.com", "a b@x.com", "a@x..com"] {
        assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn mask_email_in_free_text() {
    assert_eq!(
        mask_email("send to jane@example.com failed: <bob@x.org>, code=1"),
        "send to j***@example.com failed: <b***@x.org>, code=1"
    );
    assert_eq!(mask_email("{\"to\":\"amy@corp.io\"}"), "{\"to\":\"a***@corp.io\"}");
    assert_eq!(mask_email("no address here @ all"), "no address here @ all");
}

#[test]
fn request_id_rules() {
    assert!(RequestId::parse("abc-123_x.y:z/1").is_ok());
    assert!(RequestId::parse("").is_err());
    assert!(RequestId::parse("has space").is_err());
    assert!(RequestId::parse("line\nbreak").is_err());
    assert!(RequestId::parse(&"a".repeat(129)).is_err());
    assert_ne!(RequestId::generate(), RequestId::generate());
}
