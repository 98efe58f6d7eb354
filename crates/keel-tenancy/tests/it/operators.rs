//! Platform operators: grants beside the org roles, operator-scoped tokens, and the activity log
//! with keyset pagination, on both backends.

use super::email;
use chrono::Utc;
use keel_ids::UserId;
use keel_tenancy::{Role, Tenancy, TenancyError, TokenScope};
use keel_testkit::{backend_tests, TestDb};

backend_tests!(
    operator_grants_are_beside_org_roles,
    only_operator_tokens_carry_the_operator_scope,
    the_activity_log_pages_newest_first_by_keyset,
    orgs_and_members_list_for_the_console,
);

async fn operator_grants_are_beside_org_roles(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let org = tn.create_org("Acme", None).await.unwrap();
    let owner = tn.create_user(&email("owner@example.com"), None).await.unwrap();
    tn.add_membership(owner, org.id, Role::Owner).await.unwrap();
    let op = tn.create_user(&email("op@example.com"), None).await.unwrap();
    assert!(!tn.is_operator(owner).await.unwrap(), "an org owner is not an operator");
    assert!(!tn.is_operator(op).await.unwrap());
    let t0 = Utc::now();
    assert!(tn.grant_operator(op, None, t0).await.unwrap());
    assert!(!tn.grant_operator(op, Some(owner), t0).await.unwrap(), "granting twice changes nothing");
    assert!(tn.is_operator(op).await.unwrap());
    assert_eq!(tn.role_in(op, org.id).await.unwrap(), None, "the grant gives no org role");
    assert!(tn.grant_operator(owner, Some(op), t0).await.unwrap());
    let list = tn.operators().await.unwrap();
    assert_eq!(list.len(), 2);
    let by_op = list.iter().find(|g| g.user_id == owner).unwrap();
    assert_eq!(by_op.granted_by, Some(op));
    assert_eq!(by_op.email.as_str(), "owner@example.com");
    assert_eq!(by_op.granted_at.timestamp_millis(), t0.timestamp_millis());
    assert!(tn.revoke_operator(owner).await.unwrap());
    assert!(!tn.revoke_operator(owner).await.unwrap(), "revoking twice is harmless");
    assert!(!tn.is_operator(owner).await.unwrap());
    assert_eq!(tn.role_in(owner, org.id).await.unwrap(), Some(Role::Owner), "org roles untouched");
    let ghost = UserId::generate();
    assert!(matches!(tn.grant_operator(ghost, None, t0).await, Err(TenancyError::UnknownUser(_))));
}

async fn only_operator_tokens_carry_the_operator_scope(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let u = tn.create_user(&email("tok@example.com"), None).await.unwrap();
    let err = tn.issue_operator_token(u).await.unwrap_err();
    assert!(matches!(err, TenancyError::Invalid { field: "user", .. }), "{err}");
    let plain = tn.issue_token(u).await.unwrap();
    tn.grant_operator(u, None, Utc::now()).await.unwrap();
    let op = tn.issue_operator_token(u).await.unwrap();
    let plain_id = tn.resolve_token_identity(&plain.token).await.unwrap().unwrap();
    assert_eq!((plain_id.user_id, plain_id.scope), (u, TokenScope::Org), "a grant does not widen old tokens");
    let op_id = tn.resolve_token_identity(&op.token).await.unwrap().unwrap();
    assert_eq!((op_id.user_id, op_id.scope), (u, TokenScope::Operator));
    assert_eq!(tn.resolve_token(&op.token).await.unwrap(), Some(u));
    tn.revoke_token(op.id, Utc::now()).await.unwrap();
    assert!(tn.resolve_token_identity(&op.token).await.unwrap().is_none());
}

async fn the_activity_log_pages_newest_first_by_keyset(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let op = tn.create_user(&email("log@example.com"), None).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let detail = serde_json::json!({"n": i, "text": "<script>kept as data</script>"});
        let e = tn
            .record_operator_action(op, "job.retry", &format!("job-{i}"), detail, Utc::now(), Some("127.0.0.1".into()))
            .await
            .unwrap();
        ids.push(e.id);
    }
    let first = tn.operator_actions(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|a| a.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
    assert_eq!(first[0].target, "job-4");
    assert_eq!(first[0].detail["n"], 4);
    assert_eq!(first[0].remote_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(first[0].operator_id, op);
    let second = tn.operator_actions(Some(first[1].id), 2).await.unwrap();
    assert_eq!(second.iter().map(|a| a.id).collect::<Vec<_>>(), vec![ids[2], ids[1]]);
    let last = tn.operator_actions(Some(second[1].id), 2).await.unwrap();
    assert_eq!(last.iter().map(|a| a.id).collect::<Vec<_>>(), vec![ids[0]]);
    for (bad, field) in [("", "action"), (&"x".repeat(101)[..], "action")] {
        let e = tn.record_operator_action(op, bad, "t", serde_json::json!({}), Utc::now(), None).await.unwrap_err();
        assert!(matches!(e, TenancyError::Invalid { field: f, .. } if f == field), "{e}");
    }
    let e = tn.record_operator_action(op, "a", "t", serde_json::json!([1]), Utc::now(), None).await.unwrap_err();
    assert!(matches!(e, TenancyError::Invalid { field: "detail", .. }), "{e}");
    assert!(matches!(tn.operator_actions(None, 0).await, Err(TenancyError::Invalid { field: "limit", .. })));
    assert_eq!(tn.operator_actions(None, 500).await.unwrap().len(), 5, "nothing half-written by refusals");
}

async fn orgs_and_members_list_for_the_console(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let hq = tn.create_org("HQ", None).await.unwrap();
    let east = tn.create_org("East", Some(hq.id)).await.unwrap();
    let a = tn.create_user(&email("b@example.com"), None).await.unwrap();
    let b = tn.create_user(&email("a@example.com"), None).await.unwrap();
    tn.add_membership(a, hq.id, Role::Owner).await.unwrap();
    tn.add_membership(b, hq.id, Role::Viewer).await.unwrap();
    let orgs = tn.all_orgs(100).await.unwrap();
    assert_eq!(orgs.len(), 2);
    assert!(orgs.iter().any(|o| o.id == east.id && o.parent_id == Some(hq.id)));
    let members = tn.org_members(hq.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| (m.user_id, m.role)).collect::<Vec<_>>(),
        vec![(b, Role::Viewer), (a, Role::Owner)]
    );
    assert!(tn.org_members(east.id).await.unwrap().is_empty(), "inherited roles are the parent's members");
    assert_eq!(tn.all_orgs(1).await.unwrap().len(), 1);
}
