//! `GET /api/openapi.json`: the OpenAPI 3.0 document for every route. A test checks that each
//! operation listed here is served and that the router serves nothing unlisted.

use axum::Json;
use serde_json::{json, Value};

/// (method, path, summary) of every operation the server answers.
pub(crate) const OPERATIONS: &[(&str, &str, &str)] = &[
    ("get", "/api/health", "Health of the service and its dependencies (200 ok, 503 degraded)"),
    ("head", "/api/health", "Health status without a body"),
    ("get", "/api/health/live", "Liveness: the process is up; touches no dependency"),
    ("get", "/api/openapi.json", "This document"),
    (
        "post",
        "/api/telemetry/route-timing",
        "Ingest browser and API-client route timings (202; 204 when ingest is off)",
    ),
    ("get", "/api/telemetry/config", "Route telemetry sampling configuration"),
    ("post", "/api/auth/sign-in", "Create a browser session"),
    ("post", "/api/auth/sign-out", "End the browser session"),
    ("post", "/api/auth/forgot-password", "Email a password reset link (always 202)"),
    ("post", "/api/auth/reset-password", "Set a new password with a reset token; ends other sessions"),
    ("get", "/api/admin/invoices", "List the active org's invoices"),
    ("post", "/api/admin/invoices", "Create one invoice (honours Idempotency-Key)"),
    ("post", "/api/admin/invoices/bulk", "Create up to 1,000 invoices (honours Idempotency-Key)"),
    ("get", "/api/admin/invoices/{id}", "One invoice"),
    ("post", "/api/admin/invoices/{id}/payments", "Record a payment against an invoice"),
    ("get", "/api/admin/reports/revenue", "Exact revenue totals per currency, by month or status (JSON or CSV)"),
    ("get", "/api/admin/dashboard", "Exact KPIs for a month, cached five minutes; forecast labelled separately"),
    ("get", "/api/ops/me", "Operator API: who is calling, and the session's CSRF token for POSTs"),
    (
        "get",
        "/api/ops/overview",
        "Operator API: health, queue counts, throughput per minute, switches, pauses, cron outcomes",
    ),
    ("get", "/api/ops/queue/stats", "Operator API: the document `keel-ops queue stats --json` prints"),
    (
        "get",
        "/api/ops/jobs",
        "Operator API: jobs by state, kind and queue, newest first, keyset pages (`Link: rel=next`)",
    ),
    (
        "get",
        "/api/ops/jobs/{id}",
        "Operator API: one job (`keel-ops queue show`): sealed arguments hidden, addresses masked",
    ),
    ("post", "/api/ops/jobs/{id}/retry", "Operator API: run a job again (recorded in the activity log)"),
    ("post", "/api/ops/jobs/{id}/cancel", "Operator API: cancel a pending or retrying job (recorded)"),
    ("post", "/api/ops/jobs/{id}/requeue", "Operator API: requeue one dead-lettered job (recorded)"),
    ("post", "/api/ops/dead/requeue", "Operator API: requeue every dead-lettered job, or one kind's (recorded)"),
    ("post", "/api/ops/queues/{name}/pause", "Operator API: pause a queue for every worker (recorded)"),
    ("post", "/api/ops/queues/{name}/resume", "Operator API: resume a queue (recorded)"),
    ("get", "/api/ops/cron", "Operator API: each scheduled task's last run and the pauses in force"),
    ("get", "/api/ops/cron/runs", "Operator API: the execution log (`keel-ops cron runs --json`)"),
    ("post", "/api/ops/cron/{task}/pause", "Operator API: pause a scheduled task, or `all` (recorded)"),
    ("post", "/api/ops/cron/{task}/resume", "Operator API: resume a scheduled task, or `all` (recorded)"),
    (
        "get",
        "/api/ops/rate-limits",
        "Operator API: each policy's quota, backend, decisions and denials, denied keys masked",
    ),
    ("get", "/api/ops/telemetry", "Operator API: the report `keel-ops telemetry export --format json` writes"),
    ("get", "/api/ops/telemetry/routes", "Operator API: p95/p99 per day of the slowest routes (the console's chart)"),
    ("get", "/api/ops/orgs", "Operator API: the org tree (read-only)"),
    ("get", "/api/ops/orgs/{id}/members", "Operator API: an org's members and roles, addresses masked (read-only)"),
    ("get", "/api/ops/operators", "Operator API: every platform operator"),
    ("post", "/api/ops/operators/grant", "Operator API: grant the operator role (recorded)"),
    ("post", "/api/ops/operators/revoke", "Operator API: revoke another user's operator role (recorded)"),
    ("get", "/api/ops/activity", "Operator API: every operator action, newest first, keyset pages (`Link: rel=next`)"),
];

fn problem() -> Value {
    json!({"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

/// 409 for a create whose Idempotency-Key another request still holds.
fn in_progress() -> Value {
    let mut p = problem();
    p["description"] =
        json!("a request with this Idempotency-Key is still being processed; retry after Retry-After seconds");
    p
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn admin_params(extra: Vec<Value>) -> Value {
    let mut p = vec![
        json!({"name": "X-Org-Id", "in": "header", "required": false, "schema": {"type": "string", "format": "uuid"}}),
    ];
    p.extend(extra);
    Value::Array(p)
}

fn id_param() -> Value {
    json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}})
}

fn operation(method: &str, path: &str, summary: &str) -> Value {
    let mut op = json!({"summary": summary, "responses": {"default": problem()}});
    let ok = |desc: &str| json!({"description": desc});
    match (method, path) {
        ("get", "/api/health") | ("head", "/api/health") => {
            op["responses"]["200"] = ok("ok");
            op["responses"]["503"] = ok("degraded");
        }
        ("post", "/api/auth/sign-in") => {
            op["requestBody"] = body("SignIn");
            op["responses"]["200"] = ok("signed in; session cookie set");
        }
        ("post", "/api/auth/sign-out") => op["responses"]["204"] = ok("signed out"),
        ("post", "/api/auth/forgot-password") => {
            op["requestBody"] = body("ForgotPassword");
            op["responses"]["202"] = ok("accepted (whether or not the account exists)");
        }
        ("post", "/api/auth/reset-password") => {
            op["requestBody"] = body("ResetPassword");
            op["responses"]["204"] = ok("password changed");
        }
        ("post", "/api/telemetry/route-timing") => {
            op["requestBody"] = body("RouteTimingBatch");
            op["responses"]["202"] = ok("accepted");
            op["responses"]["204"] = ok("ingest is switched off");
        }
        ("get", "/api/admin/invoices") => {
            op["parameters"] = admin_params(vec![
                json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}),
                json!({"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}}),
                json!({"name": "status", "in": "query", "schema": {"type": "string", "enum": ["draft", "open", "paid", "void"]}}),
                json!({"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}}),
            ]);
            op["responses"]["200"] = ok("a page of invoices");
        }
        ("post", "/api/admin/invoices") => {
            op["parameters"] = admin_params(vec![
                json!({"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 200}}),
            ]);
            op["requestBody"] = body("InvoiceIn");
            op["responses"]["201"] = ok("created");
            op["responses"]["409"] = in_progress();
        }
        ("post", "/api/admin/invoices/bulk") => {
            op["parameters"] = admin_params(vec![
                json!({"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "minLength": 1, "maxLength": 200}}),
            ]);
            op["requestBody"] = body("BulkIn");
            op["responses"]["201"] = ok("created");
            op["responses"]["409"] = in_progress();
        }
        ("get", "/api/admin/invoices/{id}") => {
            op["parameters"] = admin_params(vec![id_param()]);
            op["responses"]["200"] = ok("the invoice");
        }
        ("post", "/api/admin/invoices/{id}/payments") => {
            op["parameters"] = admin_params(vec![id_param()]);
            op["requestBody"] = body("PaymentIn");
            op["responses"]["201"] = ok("recorded");
        }
        ("get", "/api/admin/reports/revenue") => {
            op["parameters"] = admin_params(vec![
                json!({"name": "from", "in": "query", "required": true, "description": "1970-01-01 to 9999-12-31", "schema": {"type": "string", "format": "date"}}),
                json!({"name": "to", "in": "query", "required": true, "description": "1970-01-01 to 9999-12-31", "schema": {"type": "string", "format": "date"}}),
                json!({"name": "group_by", "in": "query", "schema": {"type": "string", "enum": ["month", "status"]}}),
                json!({"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}}),
            ]);
            op["responses"]["200"] = ok("exact totals");
        }
        ("get", "/api/admin/dashboard") => {
            op["parameters"] = admin_params(vec![
                json!({"name": "month", "in": "query", "required": true, "description": "1970-01 to 9999-12", "schema": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}}),
            ]);
            op["responses"]["200"] = ok("KPIs");
        }
        (_, p) if p.starts_with("/api/ops/") => ops_operation(&mut op, method, p),
        _ => op["responses"]["200"] = ok("ok"),
    }
    op
}

/// The operator API's parameters and answers: every operation needs an operator (session
/// cookie, or `Authorization: Bearer` with an operator-scoped token); cookie POSTs carry
/// `X-CSRF-Token`.
fn ops_operation(op: &mut Value, method: &str, path: &str) {
    let q = |name: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "schema": schema});
    let path_param = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let mut params: Vec<Value> = Vec::new();
    for name in ["id", "name", "task"] {
        if path.contains(&format!("{{{name}}}")) {
            params.push(path_param(name));
        }
    }
    match path {
        "/api/ops/jobs" => {
            params.push(q("state", json!({"type": "string", "enum": ["pending", "processing", "retrying", "completed", "failed", "dead_letter", "cancelled"]})));
            params.push(q("kind", json!({"type": "string"})));
            params.push(q("queue", json!({"type": "string"})));
            params.push(q("id", json!({"type": "string", "format": "uuid"})));
            params.push(q("before", json!({"type": "string", "format": "uuid"})));
            params.push(q("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})));
        }
        "/api/ops/activity" => {
            params.push(q("before", json!({"type": "string", "format": "uuid"})));
            params.push(q("limit", json!({"type": "integer", "minimum": 1, "maximum": 500})));
        }
        "/api/ops/cron/runs" => {
            params.push(q("task", json!({"type": "string"})));
            params.push(q("limit", json!({"type": "integer", "minimum": 1, "maximum": 1000})));
        }
        "/api/ops/telemetry" => params.push(q("days", json!({"type": "integer", "minimum": 1, "maximum": 366}))),
        "/api/ops/telemetry/routes" => params.push(q("days", json!({"type": "integer", "minimum": 1, "maximum": 31}))),
        _ => {}
    }
    if method == "post" {
        params.push(json!({"name": "X-CSRF-Token", "in": "header", "required": false, "description": "required with the session cookie (from GET /api/ops/me); not with a bearer token", "schema": {"type": "string"}}));
    }
    match path {
        "/api/ops/dead/requeue" => {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"kind": {"type": "string"}}}}}});
        }
        "/api/ops/operators/grant" | "/api/ops/operators/revoke" => {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}}}}});
        }
        _ => {}
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op["responses"]["200"] = json!({"description": "ok"});
    op["responses"]["401"] = json!({"description": "signed out"});
    op["responses"]["403"] =
        json!({"description": "not an operator, a token without the operator scope, or a POST without its CSRF proof"});
}

pub(crate) fn build() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in OPERATIONS {
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[*method] = operation(method, path, summary);
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Keel API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Prometheus metrics are not on this port: keel-api serves GET /metrics on its own listener (KEEL_METRICS_BIND, default 127.0.0.1:9090)."},
        "paths": paths,
        "components": {"schemas": {
            "Problem": {"type": "object", "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
            "SignIn": {"type": "object", "additionalProperties": false, "required": ["email", "password"], "properties": {
                "email": {"type": "string", "format": "email"}, "password": {"type": "string"}}},
            "LineItem": {"type": "object", "additionalProperties": false, "required": ["description", "quantity", "unit_amount_minor"], "properties": {
                "description": {"type": "string", "minLength": 1, "maxLength": 500},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 1000000},
                "unit_amount_minor": {"type": "integer", "minimum": 0, "maximum": keel_billing::MAX_AMOUNT_MINOR}}},
            "InvoiceIn": {"type": "object", "additionalProperties": false, "required": ["customer_name", "currency", "line_items"], "properties": {
                "customer_name": {"type": "string", "minLength": 1, "maxLength": 200},
                "currency": {"type": "string", "minLength": 3, "maxLength": 3},
                "status": {"type": "string", "enum": ["draft", "open"]},
                "line_items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/LineItem"}}}},
            "BulkIn": {"type": "object", "additionalProperties": false, "required": ["invoices"], "properties": {
                "invoices": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/InvoiceIn"}}}},
            "RouteTimingBatch": {"type": "object", "additionalProperties": false, "required": ["events"], "properties": {
                "events": {"type": "array", "maxItems": 100, "items": {"type": "object", "additionalProperties": false,
                    "required": ["route", "kind", "duration_ms", "occurred_at", "sample_rate"], "properties": {
                        "route": {"type": "string", "maxLength": 200}, "kind": {"type": "string", "enum": ["navigation", "api"]},
                        "duration_ms": {"type": "number", "minimum": 0, "maximum": 600000}, "status": {"type": "integer", "minimum": 100, "maximum": 599},
                        "occurred_at": {"type": "string", "format": "date-time"}, "sample_rate": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "description": "one of the rates GET /api/telemetry/config serves; any other is 422"}}}}}},
            "ForgotPassword": {"type": "object", "additionalProperties": false, "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}},
            "ResetPassword": {"type": "object", "additionalProperties": false, "required": ["token", "password"], "properties": {
                "token": {"type": "string"}, "password": {"type": "string", "minLength": 10, "maxLength": 256}}},
            "PaymentIn": {"type": "object", "additionalProperties": false, "required": ["amount_minor"], "properties": {
                "amount_minor": {"type": "integer", "minimum": 1, "maximum": keel_billing::MAX_AMOUNT_MINOR}, "currency": {"type": "string"}}}
        }}
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(build())
}
