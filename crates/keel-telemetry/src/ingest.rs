//! Parsing of browser and API-client timing batches (`POST /api/telemetry/route-timing`).
//!
//! The body is `{"events": [...]}` with at most [`MAX_EVENTS`] events and [`MAX_BODY_BYTES`]
//! bytes; each event is `{route, kind, duration_ms, status?, occurred_at, sample_rate}`.
//! All or nothing: one invalid event rejects the whole batch, and every problem found (up to
//! [`MAX_PROBLEMS`]) names its field, e.g. `events[3].duration_ms`.

use crate::{RouteSample, RouteTemplate, SampleKind, SampleRate, MAX_DURATION};
use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Largest accepted request body (64 KiB). The HTTP layer should cap the body at this size too,
/// so an oversized body is refused before it is buffered.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Most events accepted in one batch.
pub const MAX_EVENTS: usize = 100;
/// Most problems listed in one rejection.
pub const MAX_PROBLEMS: usize = 20;
/// Oldest accepted `occurred_at`: browsers flush on page hide, so a week covers a laptop that
/// slept with the tab open; older events would land outside most report windows anyway.
pub const MAX_EVENT_AGE: ChronoDuration = ChronoDuration::days(7);
/// Furthest `occurred_at` may lie in the future (client clock skew).
pub const MAX_CLOCK_SKEW: ChronoDuration = ChronoDuration::minutes(5);

const FIELDS: &str = "route, kind, duration_ms, status, occurred_at, sample_rate";

/// One thing wrong with one field of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// A JSON path such as `events[3].duration_ms`.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// Why a batch was rejected. Nothing from a rejected batch is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("body: {size} bytes; at most {MAX_BODY_BYTES} are accepted, send fewer events per request")]
    BodyTooLarge {
        /// The body's size in bytes.
        size: usize,
    },
    /// The batch has more than [`MAX_EVENTS`] events.
    #[error("events: {count} events in one batch; at most {MAX_EVENTS} are accepted, split the batch")]
    TooManyEvents {
        /// Events in the batch.
        count: usize,
    },
    /// The body is not JSON (the parser's message).
    #[error("body: not valid JSON ({0})")]
    Malformed(String),
    /// Fields are missing or invalid; every problem found, each naming its field.
    #[error("{}", .0.first().map(|p| format!("{}: {}", p.field, p.message)).unwrap_or_default())]
    Invalid(Vec<FieldProblem>),
    /// Well formed, but a value the server does not accept from clients: a `sample_rate` it
    /// did not publish (see [`check_sample_rates`]). Each problem names its field.
    #[error("{}", .0.first().map(|p| format!("{}: {}", p.field, p.message)).unwrap_or_default())]
    Unacceptable(Vec<FieldProblem>),
}

impl IngestError {
    /// 413 for a body or batch over the limits, 422 for a value refused by policy, 400
    /// otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BodyTooLarge { .. } | Self::TooManyEvents { .. } => 413,
            Self::Unacceptable(_) => 422,
            Self::Malformed(_) | Self::Invalid(_) => 400,
        }
    }

    /// Every problem, each naming its field (for a problem+json `errors` member).
    pub fn problems(&self) -> Vec<FieldProblem> {
        let one = |field: &str| vec![FieldProblem { field: field.into(), message: self.to_string() }];
        match self {
            Self::BodyTooLarge { .. } | Self::Malformed(_) => one("body"),
            Self::TooManyEvents { .. } => one("events"),
            Self::Invalid(p) | Self::Unacceptable(p) => p.clone(),
        }
    }
}

/// Parses and validates a batch received at `now`. Returns every event as a [`RouteSample`], or
/// the reasons the whole batch is refused.
pub fn parse_ingest(body: &[u8], now: DateTime<Utc>) -> Result<Vec<RouteSample>, IngestError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(IngestError::BodyTooLarge { size: body.len() });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| IngestError::Malformed(e.to_string()))?;
    let mut problems = Problems::default();
    let Value::Object(top) = value else {
        problems.push("body", "must be a JSON object like {\"events\": [...]}");
        return Err(IngestError::Invalid(problems.0));
    };
    for key in top.keys().filter(|k| *k != "events") {
        problems.push(key, "unknown field; the body is {\"events\": [...]}");
    }
    let events = match top.get("events") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            problems.push("events", "must be an array of events");
            &[]
        }
        None => {
            problems.push("events", "is required: the body is {\"events\": [...]}");
            &[]
        }
    };
    if events.len() > MAX_EVENTS {
        return Err(IngestError::TooManyEvents { count: events.len() });
    }
    let mut samples = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let path = format!("events[{i}]");
        match event {
            Value::Object(obj) => {
                if let Some(s) = parse_event(&path, obj, now, &mut problems) {
                    samples.push(s);
                }
            }
            _ => problems.push(&path, &format!("must be an object with {FIELDS}")),
        }
        if problems.full() {
            break;
        }
    }
    if problems.0.is_empty() {
        Ok(samples)
    } else {
        Err(IngestError::Invalid(problems.0))
    }
}

/// Refuses a parsed batch (`samples[i]` is `events[i]`) when an event claims a sample rate
/// other than those in `published` (what `GET /api/telemetry/config` serves).
///
/// Each sample stands for 1 / rate requests in the report that feeds the scale decision, so an
/// unauthenticated client choosing its own rate (0.0001: one event counted as 10,000 requests)
/// could steer that decision. A client honouring the published config always sends one of them.
pub fn check_sample_rates(samples: &[RouteSample], published: &[SampleRate]) -> Result<(), IngestError> {
    let shown: Vec<String> = published.iter().map(|r| r.as_f64().to_string()).collect();
    let mut problems = Problems::default();
    for (i, s) in samples.iter().enumerate() {
        if !published.contains(&s.sample_rate()) {
            problems.push(
                &format!("events[{i}].sample_rate"),
                &format!(
                    "{} is not a sample rate this server publishes; use the rate from GET /api/telemetry/config ({})",
                    s.sample_rate().as_f64(),
                    if shown.is_empty() { "none: sampling is off".to_owned() } else { shown.join(" or ") }
                ),
            );
        }
    }
    if problems.0.is_empty() {
        Ok(())
    } else {
        Err(IngestError::Unacceptable(problems.0))
    }
}

#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn push(&mut self, field: &str, message: &str) {
        if !self.full() {
            self.0.push(FieldProblem { field: field.to_owned(), message: message.to_owned() });
        }
    }
    fn full(&self) -> bool {
        self.0.len() >= MAX_PROBLEMS
    }
}

fn parse_event(path: &str, obj: &Map<String, Value>, now: DateTime<Utc>, p: &mut Problems) -> Option<RouteSample> {
    let before = p.0.len();
    for key in obj.keys() {
        if !["route", "kind", "duration_ms", "status", "occurred_at", "sample_rate"].contains(&key.as_str()) {
            p.push(&format!("{path}.{key}"), &format!("unknown field; an event has {FIELDS}"));
        }
    }
    let field = |name: &str| format!("{path}.{name}");
    let route = match obj.get("route") {
        Some(Value::String(s)) => RouteTemplate::parse(s).map_err(|e| p.push(&field("route"), &e)).ok(),
        Some(_) => {
            p.push(&field("route"), "must be a string such as \"/clients/:id\"");
            None
        }
        None => {
            p.push(&field("route"), "is required (the route template, e.g. \"/clients/:id\")");
            None
        }
    };
    let kind = match obj.get("kind").map(Value::as_str) {
        Some(Some("navigation")) => Some(SampleKind::Navigation),
        Some(Some("api")) => Some(SampleKind::Api),
        Some(None) => {
            p.push(&field("kind"), "must be the string \"navigation\" or \"api\"");
            None
        }
        Some(Some(other)) => {
            let shown: String = other.chars().take(40).collect();
            p.push(&field("kind"), &format!("unknown kind {shown:?}; use \"navigation\" or \"api\""));
            None
        }
        None => {
            p.push(&field("kind"), "is required: \"navigation\" or \"api\"");
            None
        }
    };
    let max_ms = MAX_DURATION.as_millis();
    let duration = match obj.get("duration_ms").map(Value::as_f64) {
        Some(None) => {
            p.push(&field("duration_ms"), "must be a number of milliseconds from 0 to 600000");
            None
        }
        Some(Some(d)) if d < 0.0 => {
            p.push(&field("duration_ms"), &format!("must not be negative, got {d}"));
            None
        }
        Some(Some(d)) if d > max_ms as f64 => {
            p.push(
                &field("duration_ms"),
                &format!("{d} ms is over the {max_ms} ms (10 minute) limit: not a real timing"),
            );
            None
        }
        Some(Some(d)) => Some(Duration::from_micros((d * 1000.0).round() as u64)),
        None => {
            p.push(&field("duration_ms"), "is required: a number of milliseconds from 0 to 600000");
            None
        }
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(s) if (100..=599).contains(&s) => Some(s as u16),
            _ => {
                p.push(&field("status"), "must be an HTTP status from 100 to 599, or omitted");
                None
            }
        },
    };
    let occurred_at = match obj.get("occurred_at").map(parse_time) {
        Some(Some(t)) if t < now - MAX_EVENT_AGE => {
            p.push(&field("occurred_at"), "is more than 7 days old; such events are not accepted");
            None
        }
        Some(Some(t)) if t > now + MAX_CLOCK_SKEW => {
            p.push(&field("occurred_at"), "is more than 5 minutes in the future; check the client clock");
            None
        }
        Some(Some(t)) => Some(t),
        Some(None) => {
            p.push(&field("occurred_at"), "must be an RFC 3339 time (\"2026-05-01T12:00:00Z\") or unix milliseconds");
            None
        }
        None => {
            p.push(&field("occurred_at"), "is required: an RFC 3339 time or unix milliseconds");
            None
        }
    };
    let sample_rate = match obj.get("sample_rate").map(Value::as_f64) {
        Some(Some(r)) => SampleRate::new(r).map_err(|e| p.push(&field("sample_rate"), &e)).ok(),
        Some(None) => {
            p.push(&field("sample_rate"), "must be a number greater than 0 and at most 1");
            None
        }
        None => {
            p.push(&field("sample_rate"), "is required: the fraction sampled, greater than 0 and at most 1");
            None
        }
    };
    if p.0.len() != before {
        return None;
    }
    Some(RouteSample::new(route?, kind?, None, status, duration?, sample_rate?, occurred_at?))
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        _ => None,
    }
}
