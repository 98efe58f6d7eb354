//! `keel-ops operator grant|revoke|list` and `token issue --operator`: platform operators are
//! granted beside the org roles, listed with masked addresses, and only an operator can get an
//! operator-scoped token (other tokens never carry the scope).

use super::ops_async;
use keel_tenancy::{Tenancy, TokenScope};
use keel_testkit::{backend_tests, TestDb};
use serde_json::Value;

backend_tests!(operators_are_granted_listed_and_revoked);

async fn operators_are_granted_listed_and_revoked(t: TestDb) {
    let env = [("DATABASE_URL", t.url.as_str())];
    let (code, out, err) = ops_async(&["org", "create", "HQ", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let org = serde_json::from_str::<Value>(&out).unwrap()["id"].as_str().unwrap().to_owned();
    let create = ["user", "create", "--email", "oncall@example.com", "--org", &org, "--role", "viewer", "--json"];
    assert_eq!(ops_async(&create, &env).await.0, 0);
    let tn = Tenancy::new(t.db.clone());

    let (code, out, err) = ops_async(&["token", "issue", "--user", "oncall@example.com", "--operator"], &env).await;
    assert_eq!(code, 2, "not an operator yet: {out}");
    assert!(err.contains("--user") && err.contains("operator grant"), "{err}");

    let (code, out, _) = ops_async(&["operator", "list", "--json"], &env).await;
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, out, err) = ops_async(&["operator", "grant", "oncall@example.com", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["granted"], true);
    assert!(!out.contains("oncall@example.com"), "addresses are masked: {out}");
    let (_, out, _) = ops_async(&["operator", "grant", "oncall@example.com", "--json"], &env).await;
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["granted"], false, "granting twice changes nothing");
    let (code, out, _) = ops_async(&["operator", "list", "--json"], &env).await;
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["user_id"], v["user_id"]);
    assert!(list[0]["granted_by"].is_null(), "granted from the command line");
    assert!(!out.contains("oncall@example.com"), "{out}");
    let (code, out, _) = ops_async(&["operator", "list"], &env).await;
    assert_eq!(code, 0);
    assert!(out.contains(v["user_id"].as_str().unwrap()), "{out}");

    let (code, out, err) =
        ops_async(&["token", "issue", "--user", "oncall@example.com", "--operator", "--json"], &env).await;
    assert_eq!(code, 0, "{err}");
    let tok: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(tok["scope"], "operator");
    let id = tn.resolve_token_identity(tok["token"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(id.scope, TokenScope::Operator);
    let (_, out, _) = ops_async(&["token", "issue", "--user", "oncall@example.com", "--json"], &env).await;
    let plain: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plain["scope"], "org");
    let id = tn.resolve_token_identity(plain["token"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(id.scope, TokenScope::Org, "tokens issued without --operator never carry the scope");

    let (code, out, _) = ops_async(&["operator", "revoke", "oncall@example.com", "--json"], &env).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["revoked"], true);
    assert!(!tn.is_operator(id.user_id).await.unwrap());
    let (code, out, _) = ops_async(&["operator", "revoke", "oncall@example.com"], &env).await;
    assert_eq!(code, 0);
    assert!(out.contains("was not an operator"), "{out}");
    let (code, _, err) = ops_async(&["operator", "grant", "nobody@example.com"], &env).await;
    assert_eq!(code, 2);
    assert!(err.contains("EMAIL: no user"), "{err}");
    let (code, _, err) = ops_async(&["operator", "grant", "not-an-address"], &env).await;
    assert_eq!(code, 2);
    assert!(err.contains("EMAIL"), "{err}");
}
