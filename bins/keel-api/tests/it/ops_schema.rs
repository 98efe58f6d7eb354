//! Every operator API answer has the fields its OpenAPI schema documents, both backends: the
//! answers are built as JSON values by hand (and by keel-queue's `ops_json`), so a field added,
//! renamed or dropped there without its documentation struct (`src/ops/schema.rs`) fails here.
//! Each answer is walked against `/api/openapi.json` as served: objects carry only documented
//! properties and every required one, scalars have their documented JSON type.

use crate::fixture::world;
use crate::ops::{dead_job, operator};
use crate::start;
use keel_queue::store::CronBegin;
use keel_testkit::{backend_tests, TestDb};
use serde_json::{json, Value};
use std::time::Duration;

backend_tests!(every_operator_answer_has_its_documented_fields);

/// The schema `$ref` points to.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "null" => v.is_null(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

/// Checks `v` against `schema`, appending each mismatch (with its JSON path) to `errs`.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alts) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        // utoipa writes a nullable reference as `oneOf: [{type: null}, {$ref}]`.
        let non_null: Vec<&Value> = alts.iter().filter(|a| a.get("type") != Some(&json!("null"))).collect();
        if v.is_null() && non_null.len() < alts.len() {
            return;
        }
        for alt in non_null {
            let mut mine = Vec::new();
            check(doc, alt, v, at, &mut mine);
            if mine.is_empty() {
                return;
            }
        }
        errs.push(format!("{at}: {v} matches none of {alts:?}"));
        return;
    }
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => errs.push(format!("{at}: {v} is not {t}")),
        Some(Value::Array(ts)) if !ts.iter().filter_map(Value::as_str).any(|t| type_matches(t, v)) => {
            errs.push(format!("{at}: {v} is none of {ts:?}"))
        }
        _ => {}
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array) {
        if !v.is_null() && !en.contains(v) {
            errs.push(format!("{at}: {v} is not one of {en:?}"));
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"), errs);
        }
    }
    let Some(obj) = v.as_object() else { return };
    // `allOf` (a flattened struct beside its own fields): the properties of every part.
    let parts: Vec<&Value> = match schema.get("allOf").and_then(Value::as_array) {
        Some(all) => all.iter().map(|p| resolve(doc, p)).collect(),
        None => vec![schema],
    };
    let mut props = serde_json::Map::new();
    let mut required = Vec::new();
    let mut described = false;
    for part in parts {
        if let Some(p) = part.get("properties").and_then(Value::as_object) {
            described = true;
            props.extend(p.clone());
        }
        if let Some(r) = part.get("required").and_then(Value::as_array) {
            required.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(extra) = part.get("additionalProperties").filter(|e| e.is_object()) {
            for (k, item) in obj {
                check(doc, extra, item, &format!("{at}.{k}"), errs);
            }
        }
    }
    if !described {
        return;
    }
    for r in &required {
        if !obj.contains_key(r) {
            errs.push(format!("{at}: the required field `{r}` is missing"));
        }
    }
    for (k, item) in obj {
        match props.get(k) {
            Some(s) => check(doc, s, item, &format!("{at}.{k}"), errs),
            None => errs.push(format!("{at}: the field `{k}` is not documented")),
        }
    }
}

async fn every_operator_answer_has_its_documented_fields(t: TestDb) {
    let w = world(&t).await;
    let (_, token) = operator(&t).await;
    let store = keel_queue::open(t.db.clone());
    let dead = dead_job(&store, "demo.dead", "boom for someone@example.com").await;
    let other = dead_job(&store, "demo.other", "boom").await;
    // One cron run still running (no duration yet) and one pause, so the cron view has rows.
    let now = chrono::Utc::now();
    store
        .cron_begin(CronBegin {
            task: "demo.task".into(),
            worker: "test-worker".into(),
            lease: Duration::from_secs(60),
            first_due: now,
            next_due: now + chrono::TimeDelta::minutes(1),
            skipped_ticks: 0,
        })
        .await
        .unwrap();
    let s = start(t).await;
    let c = reqwest::Client::new();
    let doc: Value = c.get(s.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();

    // (method, documented path, requested path, body)
    let parent = w.parent.to_string();
    let calls: Vec<(&str, &str, String, Option<Value>)> = vec![
        ("post", "/api/ops/jobs/{id}/requeue", format!("/api/ops/jobs/{dead}/requeue"), None),
        ("post", "/api/ops/dead/requeue", "/api/ops/dead/requeue".into(), Some(json!({"kind": "demo.other"}))),
        ("post", "/api/ops/jobs/{id}/cancel", format!("/api/ops/jobs/{other}/cancel"), None),
        ("post", "/api/ops/jobs/{id}/retry", format!("/api/ops/jobs/{other}/retry"), None),
        ("post", "/api/ops/queues/{name}/pause", "/api/ops/queues/mail/pause".into(), None),
        ("post", "/api/ops/queues/{name}/resume", "/api/ops/queues/mail/resume".into(), None),
        ("post", "/api/ops/cron/{task}/pause", "/api/ops/cron/demo.task/pause".into(), None),
        ("post", "/api/ops/operators/grant", "/api/ops/operators/grant".into(), Some(json!({"email": w.owner_email}))),
        (
            "post",
            "/api/ops/operators/revoke",
            "/api/ops/operators/revoke".into(),
            Some(json!({"email": w.owner_email})),
        ),
        ("post", "/api/ops/operators/grant", "/api/ops/operators/grant".into(), Some(json!({"email": w.owner_email}))),
        ("get", "/api/ops/me", "/api/ops/me".into(), None),
        ("get", "/api/ops/overview", "/api/ops/overview".into(), None),
        ("get", "/api/ops/queue/stats", "/api/ops/queue/stats".into(), None),
        ("get", "/api/ops/jobs", "/api/ops/jobs?limit=1".into(), None),
        ("get", "/api/ops/jobs/{id}", format!("/api/ops/jobs/{dead}"), None),
        ("get", "/api/ops/cron", "/api/ops/cron".into(), None),
        ("get", "/api/ops/cron/runs", "/api/ops/cron/runs".into(), None),
        ("get", "/api/ops/rate-limits", "/api/ops/rate-limits".into(), None),
        ("get", "/api/ops/telemetry", "/api/ops/telemetry?days=1".into(), None),
        ("get", "/api/ops/telemetry/routes", "/api/ops/telemetry/routes?days=2".into(), None),
        ("get", "/api/ops/orgs", "/api/ops/orgs".into(), None),
        ("get", "/api/ops/orgs/{id}/members", format!("/api/ops/orgs/{parent}/members"), None),
        ("get", "/api/ops/operators", "/api/ops/operators".into(), None),
        ("get", "/api/ops/activity", "/api/ops/activity?limit=2".into(), None),
        ("post", "/api/ops/cron/{task}/resume", "/api/ops/cron/demo.task/resume".into(), None),
    ];
    let mut errs = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for (method, documented, path, body) in calls {
        let req = if method == "get" { c.get(s.url(&path)) } else { c.post(s.url(&path)) };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.bearer_auth(&token).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{method} {path}: {text}");
        let got: Value = serde_json::from_str(&text).unwrap();
        let schema = &doc["paths"][documented][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{method} {documented} documents no JSON 200");
        check(&doc, schema, &got, &format!("{method} {path}"), &mut errs);
        checked.insert((method, documented));
    }
    assert!(errs.is_empty(), "answers off their documented schemas:\n{}", errs.join("\n"));
    // Every documented operator operation was checked once at least.
    let documented: Vec<(String, String)> = keel_api::operations()
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/ops/"))
        .filter(|(m, p)| !checked.contains(&(m.as_str(), p.as_str())))
        .collect();
    assert!(documented.is_empty(), "operator operations this test does not check: {documented:?}");
}
