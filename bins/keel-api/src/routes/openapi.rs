//! `GET /api/openapi.json`: the OpenAPI document, derived by utoipa from the handlers'
//! `#[utoipa::path]` annotations and the body types' `ToSchema` derives, so the limits a handler
//! enforces and the document share their constants and cannot drift. A test checks that every
//! route the router serves is in [`ApiDoc`]'s paths and that every documented operation is served.
//!
//! Answers made by the layers in front of a route group (the rate limiters' 429, the time
//! budget's 503, the session middleware's 401) are added by [`EdgeResponses`], next to the
//! group's prefix, so a new handler in a group documents them without repeating them; a handler's
//! own annotation of the same status wins.

use super::{auth, health, invoices, recovery, telemetry};
use crate::error::Problem;
use crate::ops::routes as ops;
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

const PROBLEM_JSON: &str = "application/problem+json";

/// The document's root: every operation the server answers is listed in `paths(...)`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keel API",
        description = "Prometheus metrics are not on this port: keel-api serves GET /metrics on its own listener (KEEL_METRICS_BIND, default 127.0.0.1:9090). Every error answer is application/problem+json (RFC 9457)."
    ),
    paths(
        health::health,
        health::live,
        document,
        telemetry::ingest,
        telemetry::config,
        auth::sign_in,
        auth::sign_out,
        recovery::forgot_password,
        recovery::reset_password,
        invoices::list,
        invoices::create,
        invoices::create_bulk,
        invoices::get_one,
        invoices::add_payment,
        crate::reports::revenue::revenue,
        crate::reports::dashboard::dashboard,
        ops::me,
        ops::overview,
        ops::queue_stats,
        ops::jobs,
        ops::job,
        ops::retry,
        ops::cancel,
        ops::requeue_one,
        ops::requeue_dead,
        ops::queue_pause,
        ops::queue_resume,
        ops::cron,
        ops::cron_runs,
        ops::task_pause,
        ops::task_resume,
        ops::rate_limits,
        ops::telemetry,
        ops::route_trend,
        ops::orgs,
        ops::members,
        ops::operators,
        ops::grant,
        ops::revoke,
        ops::activity,
    ),
    components(
        // Schemas that fields refer to by name through `schema_with` (utoipa collects the rest).
        schemas(Problem, crate::FieldError, invoices::LineItemIn, telemetry::RouteTimingEvent),
        responses(ProblemAnswer, RateLimited, Unavailable, Unauthorized, Forbidden, OperatorForbidden, BadRequest, Invalid, NotFound, InProgress, TooLarge)
    ),
    modifiers(&SecuritySchemes, &EdgeResponses),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "auth", description = "Browser sessions and password recovery"),
        (name = "invoices", description = "The active org's invoices and payments"),
        (name = "reports", description = "Exact revenue reports and the dashboard"),
        (name = "telemetry", description = "Route timings from browsers and API clients"),
        (name = "ops", description = "The operator API: platform operators only (session cookie with `X-CSRF-Token` on POSTs, or an operator-scoped bearer token)"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Security scheme names, as operations' `security(...)` refer to them (utoipa takes only
/// literals there; a test checks every reference names a scheme defined here).
const SESSION: &str = "session";
const BEARER: &str = "bearer";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut cookie = ApiKeyValue::new(crate::auth::COOKIE_NAME);
        cookie.description = Some("The signed browser session cookie `POST /api/auth/sign-in` sets".into());
        components.add_security_scheme(SESSION, SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (`keel-ops token issue`)"))
                    .build(),
            ),
        );
    }
}

/// The answers of the layers in front of each route group (see `routes/mod.rs`), added to every
/// operation of the group that does not document that status itself; and `default` (any other
/// error, e.g. 405, 414, 431, 500) everywhere.
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            let layered: &[(&str, &str)] = if path.starts_with("/api/admin/") {
                // session middleware + handlers' permission checks, admin_api floor, time budget
                &[("401", "Unauthorized"), ("403", "Forbidden"), ("429", "RateLimited"), ("503", "Unavailable")]
            } else if path.starts_with("/api/ops/") {
                // operator_console floor, time budget, session middleware, then `Operator`
                &[("401", "Unauthorized"), ("403", "OperatorForbidden"), ("429", "RateLimited"), ("503", "Unavailable")]
            } else if path.starts_with("/api/auth/") {
                // public_ingress limit (fails closed with 503), time budget
                &[("429", "RateLimited"), ("503", "Unavailable")]
            } else if path == "/api/telemetry/route-timing" {
                &[("429", "RateLimited"), ("503", "Unavailable")]
            } else {
                &[]
            };
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for op in ops.into_iter().flatten() {
                add_responses(op, layered);
            }
            // One handler serves GET and HEAD (`method(get, head)`): operation ids must be
            // unique, and a HEAD answer has the GET's headers but no body.
            if let Some(head) = &mut item.head {
                head.operation_id = head.operation_id.take().map(|id| format!("{id}_head"));
                for response in head.responses.responses.values_mut() {
                    if let RefOr::T(r) = response {
                        r.content.clear();
                    }
                }
            }
        }
    }
}

fn add_responses(op: &mut Operation, layered: &[(&str, &str)]) {
    let responses = &mut op.responses.responses;
    for (status, name) in layered.iter().chain(&[("default", "ProblemAnswer")]) {
        responses.entry((*status).to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
    }
}

/// A problem+json answer with the given description.
fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
}

/// A problem+json answer that carries `Retry-After` (whole seconds, at least 1).
fn problem_with_retry_after(description: &str) -> Response {
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    problem(description)
        .header(
            header::RETRY_AFTER.as_str(),
            HeaderBuilder::new().schema(seconds).description(Some("Seconds to wait before retrying")).build(),
        )
        .build()
}

macro_rules! problem_response {
    ($(#[doc = $doc:literal] $name:ident => $make:expr;)*) => {$(
        #[doc = $doc]
        pub(crate) struct $name;
        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), RefOr::T($make))
            }
        }
    )*};
}

problem_response! {
    /// Any other error (`default`).
    ProblemAnswer => problem("Problem details (RFC 9457): 405, 414, 431, 500 and any other error").build();
    /// 429 from a rate limiter or a throttle.
    RateLimited => problem_with_retry_after("Too many requests; retry after Retry-After seconds");
    /// 503: a dependency or the time budget; retrying later may work.
    Unavailable => problem_with_retry_after("Temporarily unavailable (a dependency, or the request's time budget); retry after Retry-After seconds");
    /// 401.
    Unauthorized => problem("No valid session cookie or bearer token").build();
    /// 403.
    Forbidden => problem("The caller's role in the active org lacks the permission, or the org is not the caller's").build();
    /// 403 from the operator API.
    OperatorForbidden => problem("Not an operator, a token without the operator scope, or a cookie POST without its X-CSRF-Token or from another origin").build();
    /// 400.
    BadRequest => problem("The request could not be parsed (not JSON, a malformed parameter); `errors` names the field").build();
    /// 422.
    Invalid => problem("The request parsed but a value is not acceptable; `errors` names each field and the fix").build();
    /// 404.
    NotFound => problem("No such resource in the active org").build();
    /// 409: a create whose Idempotency-Key another request still holds.
    InProgress => problem_with_retry_after("A request with this Idempotency-Key is still being processed; retry after Retry-After seconds to get its answer");
    /// 413.
    TooLarge => problem("The request body is larger than the route accepts").build();
}

/// The document, serialized once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi().to_json().unwrap_or_else(|e| unreachable!("the derived document serializes: {e}"))
});

/// Every (method, path) the document lists, e.g. `("get", "/api/health")`.
pub(crate) fn operations() -> Vec<(String, String)> {
    let doc = ApiDoc::openapi();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("get", &item.get),
            ("put", &item.put),
            ("post", &item.post),
            ("delete", &item.delete),
            ("options", &item.options),
            ("head", &item.head),
            ("patch", &item.patch),
            ("trace", &item.trace),
        ];
        out.extend(methods.into_iter().filter(|(_, op)| op.is_some()).map(|(m, _)| (m.to_owned(), path.clone())));
    }
    out
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::from_str(&DOCUMENT).unwrap()
    }

    fn operations_of(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
        out
    }

    /// Every `$ref` names a component that exists: `schema_with` and `response = ...` refer by
    /// name, so a renamed type would otherwise leave a dangling reference.
    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        fn walk(v: &Value, doc: &Value, seen: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let mut target = doc;
                        for part in r.trim_start_matches("#/").split('/') {
                            target = &target[part];
                        }
                        assert!(!target.is_null(), "dangling reference {r}");
                        *seen += 1;
                    }
                    m.values().for_each(|v| walk(v, doc, seen));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, doc, seen)),
                _ => {}
            }
        }
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 20, "{seen} references");
    }

    /// Operations name only the security schemes the document defines, and every admin
    /// operation requires one.
    #[test]
    fn security_requirements_name_defined_schemes() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert!(schemes.contains_key(SESSION) && schemes.contains_key(BEARER));
        for (method, path, op) in operations_of(&doc) {
            let reqs = op["security"].as_array().cloned().unwrap_or_default();
            for name in reqs.iter().flat_map(|r| r.as_object().unwrap().keys()) {
                assert!(schemes.contains_key(name), "{method} {path} names unknown scheme {name}");
            }
            if path.starts_with("/api/admin/") || path.starts_with("/api/ops/") {
                assert!(
                    !reqs.is_empty() && reqs.iter().all(|r| !r.as_object().unwrap().is_empty()),
                    "{method} {path} must require a session or a token"
                );
            }
        }
    }

    /// The operator API: every operation is tagged `ops` and documents the 401 and 403 its
    /// extractor answers; every POST documents the `X-CSRF-Token` header a cookie caller sends.
    #[test]
    fn operator_operations_document_auth_and_the_csrf_header() {
        let doc = doc();
        let ops: Vec<_> = operations_of(&doc).into_iter().filter(|(_, p, _)| p.starts_with("/api/ops/")).collect();
        assert!(ops.len() >= 20, "the operator API is documented: {}", ops.len());
        for (method, path, op) in ops {
            assert_eq!(op["tags"], serde_json::json!(["ops"]), "{method} {path}");
            for status in ["401", "403"] {
                assert!(!op["responses"][status].is_null(), "{method} {path} documents no {status}");
            }
            let csrf = op["parameters"].as_array().into_iter().flatten().any(|p| {
                p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(crate::ops::CSRF_HEADER))
                    && p["in"] == "header"
                    && p["required"] != true
            });
            assert_eq!(csrf, method == "post", "{method} {path}: the X-CSRF-Token parameter");
        }
    }

    /// Every operation documents a success and a problem+json `default`; every operation behind
    /// a rate limiter documents its 429 and 503 with `Retry-After`.
    #[test]
    fn every_operation_documents_success_errors_and_retry_after() {
        let doc = doc();
        let responses = &doc["components"]["responses"];
        for (method, path, op) in operations_of(&doc) {
            let r = op["responses"].as_object().unwrap();
            assert!(r.keys().any(|s| s.starts_with('2')), "{method} {path}: no 2xx");
            assert_eq!(r["default"]["$ref"], "#/components/responses/ProblemAnswer", "{method} {path}");
            if path.starts_with("/api/admin/") || path.starts_with("/api/auth/") || path.contains("route-timing") {
                for status in ["429", "503"] {
                    let name = r[status]["$ref"].as_str().unwrap_or_else(|| panic!("{method} {path}: no {status}"));
                    let resp = &responses[name.rsplit('/').next().unwrap()];
                    assert!(resp["headers"]["retry-after"].is_object(), "{method} {path} {status}: no Retry-After");
                    assert_eq!(
                        resp["content"][PROBLEM_JSON]["schema"]["$ref"], "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    /// The limits in the request schemas are the handlers' constants.
    #[test]
    fn body_limits_come_from_the_handlers_constants() {
        let doc = doc();
        let s = &doc["components"]["schemas"];
        assert_eq!(s["InvoiceIn"]["properties"]["line_items"]["maxItems"], invoices::MAX_ITEMS);
        assert_eq!(s["BulkIn"]["properties"]["invoices"]["maxItems"], invoices::MAX_ITEMS);
        assert_eq!(s["LineItemIn"]["properties"]["unit_amount_minor"]["maximum"], keel_billing::MAX_AMOUNT_MINOR);
        assert_eq!(s["PaymentIn"]["properties"]["amount_minor"]["maximum"], keel_billing::MAX_AMOUNT_MINOR);
        assert_eq!(s["Reset"]["properties"]["password"]["minLength"], keel_tenancy::MIN_PASSWORD_LEN);
        assert_eq!(s["RouteTimingBatch"]["properties"]["events"]["maxItems"], keel_telemetry::MAX_EVENTS);
        let currencies = s["InvoiceIn"]["properties"]["currency"]["enum"].as_array().unwrap();
        assert_eq!(currencies.len(), keel_money::Currency::all().len());
        assert!(currencies.contains(&Value::from("USD")));
        for body in ["InvoiceIn", "LineItemIn", "BulkIn", "PaymentIn", "SignIn", "Forgot", "Reset", "RouteTimingBatch"]
        {
            assert_eq!(s[body]["additionalProperties"], false, "{body}: the handler refuses unknown fields");
        }
    }

    #[test]
    fn operations_lists_every_method_of_every_path() {
        let ops = operations();
        assert!(ops.contains(&("head".into(), "/api/health".into())));
        assert!(ops.contains(&("post".into(), "/api/admin/invoices/{id}/payments".into())));
        assert_eq!(ops.len(), operations_of(&doc()).len());
    }
}
