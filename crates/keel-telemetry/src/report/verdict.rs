//! The verdict: SLOs against measured percentiles (the Phase 0 stop condition), the
//! business-load target, and the cost gate. Pure functions of the report's inputs.

use crate::percentile::RoutePercentiles;
use crate::SampleKind;
use chrono::NaiveDate;
use keel_money::{Currency, Money};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The stop-condition instruction when every route meets its SLOs.
pub const STOP_CONDITION: &str = "halt scale phases and re-evaluate quarterly";
/// What the report says without a business-load target.
pub const NO_ANCHOR: &str = "scale work has no anchor";

/// Fewer stored samples than this and a route's p99 is "not enough samples": below 100 events,
/// the p99 is the slowest or second slowest request seen, which says little about the route.
/// The threshold counts stored events, not weighted ones, because the precision of an estimate
/// depends on what was observed, not on how many requests each observation stands for.
pub const MIN_P99_SAMPLES: u64 = 100;

/// Latency objectives in milliseconds; either may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Slo {
    /// Every route's p95 must be at most this.
    pub p95_ms: Option<u64>,
    /// Every route's p99 (with enough samples) must be at most this.
    pub p99_ms: Option<u64>,
}

/// How routes fared against the objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloOutcome {
    /// No SLO given: nothing to judge.
    NotConfigured,
    /// No route timing in the window.
    NoData,
    /// Every judged route meets every SLO: the stop condition holds.
    Met,
    /// At least one route is over an SLO.
    Breached,
}

/// One route over one objective.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Breach {
    /// Where the samples came from.
    pub kind: SampleKind,
    /// The route template.
    pub route: String,
    /// `p95` or `p99`.
    pub percentile: &'static str,
    /// The measured percentile, in microseconds.
    pub measured_us: i64,
    /// The objective it exceeds, in milliseconds.
    pub slo_ms: u64,
    /// Stored samples behind the measurement.
    pub samples: u64,
}

/// The SLO judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloVerdict {
    /// The overall outcome.
    pub outcome: SloOutcome,
    /// The objectives judged against.
    pub slo: Slo,
    /// Every route over an objective.
    pub breaches: Vec<Breach>,
    /// Routes whose p99 was not judged for lack of samples (`kind route`).
    pub p99_not_judged: Vec<String>,
    /// The judgement in a sentence or two, as the report prints it.
    pub text: String,
}

pub(crate) fn judge_slo(slo: Slo, routes: &[RoutePercentiles], days: u32) -> SloVerdict {
    let verdict = |outcome, breaches, p99_not_judged, text| SloVerdict { outcome, slo, breaches, p99_not_judged, text };
    if slo.p95_ms.is_none() && slo.p99_ms.is_none() {
        return verdict(
            SloOutcome::NotConfigured,
            vec![],
            vec![],
            "No SLOs configured (--slo-p95-ms / --slo-p99-ms, or --slo-file): the stop condition cannot be evaluated."
                .into(),
        );
    }
    if routes.is_empty() {
        return verdict(
            SloOutcome::NoData,
            vec![],
            vec![],
            format!("No route timing in the last {days} days: the stop condition cannot be evaluated. Check that the timing layer and browser telemetry are enabled."),
        );
    }
    let mut breaches = Vec::new();
    let mut not_judged = Vec::new();
    for r in routes {
        if let Some(ms) = slo.p95_ms {
            if r.p95_us > ms_to_us(ms) {
                breaches.push(breach(r, "p95", r.p95_us, ms));
            }
        }
        if let Some(ms) = slo.p99_ms {
            if r.samples < MIN_P99_SAMPLES {
                not_judged.push(format!("{} {}", r.kind.as_str(), r.route));
            } else if r.p99_us > ms_to_us(ms) {
                breaches.push(breach(r, "p99", r.p99_us, ms));
            }
        }
    }
    let samples: u64 = routes.iter().map(|r| r.samples).sum();
    let requests: f64 = routes.iter().map(RoutePercentiles::estimated_requests).sum();
    let objectives = [slo.p95_ms.map(|v| format!("p95 ≤ {v} ms")), slo.p99_ms.map(|v| format!("p99 ≤ {v} ms"))]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
    let load = format!("{samples} samples standing for about {requests:.0} requests over {days} days");
    if breaches.is_empty() {
        let mut text = format!(
            "Every route meets the SLOs ({objectives}) at the measured load ({load}). Stop condition: {STOP_CONDITION}."
        );
        if !not_judged.is_empty() {
            text.push_str(&format!(
                " The p99 of {} route(s) was not judged (fewer than {MIN_P99_SAMPLES} samples).",
                not_judged.len()
            ));
        }
        verdict(SloOutcome::Met, vec![], not_judged, text)
    } else {
        let routes_over: std::collections::BTreeSet<(SampleKind, &str)> =
            breaches.iter().map(|b| (b.kind, b.route.as_str())).collect();
        let text = format!(
            "{} route(s) breach the SLOs ({objectives}) at the measured load ({load}); the stop condition does not hold.",
            routes_over.len()
        );
        verdict(SloOutcome::Breached, breaches, not_judged, text)
    }
}

fn ms_to_us(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

fn breach(r: &RoutePercentiles, percentile: &'static str, measured_us: i64, slo_ms: u64) -> Breach {
    Breach { kind: r.kind, route: r.route.clone(), percentile, measured_us, slo_ms, samples: r.samples }
}

/// "N sessions by YYYY-MM-DD: reason" — the business owner's written load target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadTarget {
    /// Simultaneous authenticated active sessions.
    pub sessions: u64,
    /// The date the load is expected by.
    pub by: NaiveDate,
    /// The launch, customer or usage reason that justifies the number.
    pub reason: String,
}

impl FromStr for LoadTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let form =
            "write it as \"N sessions by YYYY-MM-DD: reason\", e.g. \"1000 sessions by 2026-09-01: spring launch\"";
        let (head, reason) = s.split_once(':').ok_or_else(|| format!("the reason is missing; {form}"))?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(format!("the reason after ':' is empty; {form}"));
        }
        let words: Vec<&str> = head.split_whitespace().collect();
        let [n, unit, by, date] = words.as_slice() else {
            return Err(format!("cannot read {head:?}; {form}"));
        };
        if !matches!(*unit, "sessions" | "session") || *by != "by" {
            return Err(format!("cannot read {head:?}; {form}"));
        }
        let sessions: u64 = n
            .replace(['_', ','], "")
            .parse()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{n:?} is not a positive whole number of sessions; {form}"))?;
        let by = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| format!("{date:?} is not a date like 2026-09-01; {form}"))?;
        Ok(LoadTarget { sessions, by, reason: reason.to_owned() })
    }
}

impl fmt::Display for LoadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} simultaneous authenticated active sessions by {}: {}", self.sessions, self.by, self.reason)
    }
}

/// The load-target section of the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadVerdict {
    /// The target given, if any.
    pub target: Option<LoadTarget>,
    /// The restated target, or what is missing, as the report prints it.
    pub text: String,
}

pub(crate) fn judge_load(target: Option<&LoadTarget>, today: NaiveDate) -> LoadVerdict {
    let text = match target {
        None => format!(
            "Not set: {NO_ANCHOR}. The business owner must write down N simultaneous authenticated active sessions by date D and the reason (--load-target \"N sessions by YYYY-MM-DD: reason\")."
        ),
        Some(t) if t.by < today => {
            format!("{t}. Its date has passed: the business owner should restate it.")
        }
        Some(t) => format!("{t}."),
    };
    LoadVerdict { target: target.cloned(), text }
}

/// Spending inputs of the cost gate, all in US dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostInputs {
    monthly_spend: Option<Money>,
    mrr: Option<Money>,
    launch_risk_exception: bool,
}

impl CostInputs {
    /// Refuses amounts in another currency than USD (the ceilings are dollar figures) and
    /// negative amounts.
    pub fn new(monthly_spend: Option<Money>, mrr: Option<Money>, launch_risk_exception: bool) -> Result<Self, String> {
        for (flag, m) in [("--monthly-spend", monthly_spend), ("--mrr", mrr)] {
            if let Some(m) = m {
                if m.currency() != Currency::USD {
                    return Err(format!("{flag}: the cost gate is in US dollars, got {}", m.currency().code()));
                }
                if m.is_negative() {
                    return Err(format!("{flag}: must not be negative, got {m}"));
                }
            }
        }
        Ok(Self { monthly_spend, mrr, launch_risk_exception })
    }
}

const fn dollars(d: i64) -> i64 {
    d * 100
}

/// Monthly ceilings in cents and the MRR (cents) that unlocks each.
const BASE_CEILING: i64 = dollars(250);
const TIERS: [(i64, i64); 2] = [(dollars(25_000), dollars(1_000)), (dollars(10_000), dollars(500))];

/// Where the monthly spend stands against its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostOutcome {
    /// No spend given: the gate is not evaluated.
    NotGiven,
    /// At or under the ceiling.
    WithinCeiling,
    /// Over the ceiling: a business-owner approval is required before the phase starts.
    NeedsOwnerApproval,
    /// Over the ceiling, covered by a written launch-risk exception from the business owner.
    LaunchRiskException,
}

/// The cost gate's judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostVerdict {
    /// The outcome.
    pub outcome: CostOutcome,
    /// The monthly ceiling for the given MRR ([`monthly_ceiling`]).
    pub ceiling: Money,
    /// The monthly spend given.
    pub monthly_spend: Option<Money>,
    /// The monthly recurring revenue given.
    pub mrr: Option<Money>,
    /// Whether the business owner wrote a launch-risk exception.
    pub launch_risk_exception: bool,
    /// The judgement as the report prints it.
    pub text: String,
}

/// The ceiling for an MRR: $250/month, $500 from $10k MRR, $1,000 from $25k MRR.
pub fn monthly_ceiling(mrr: Option<Money>) -> Money {
    let mrr_cents = mrr.map(Money::minor).unwrap_or(0);
    let cents = TIERS.iter().find(|(min, _)| mrr_cents >= *min).map(|(_, c)| *c).unwrap_or(BASE_CEILING);
    Money::from_minor(cents, Currency::USD)
}

pub(crate) fn judge_cost(c: &CostInputs) -> CostVerdict {
    let ceiling = monthly_ceiling(c.mrr);
    let basis = match c.mrr {
        Some(m) => format!("ceiling {ceiling}/month at MRR {m}"),
        None => format!("ceiling {ceiling}/month; no MRR given, so the base ceiling applies"),
    };
    let (outcome, text) = match c.monthly_spend {
        None => (
            CostOutcome::NotGiven,
            format!("Cost gate not evaluated: no monthly spend given (--monthly-spend); {basis}."),
        ),
        Some(s) if s.minor() <= ceiling.minor() => {
            (CostOutcome::WithinCeiling, format!("Monthly spend {s} is within the {basis}."))
        }
        Some(s) if c.launch_risk_exception => (
            CostOutcome::LaunchRiskException,
            format!("Monthly spend {s} is above the {basis}, under a written launch-risk exception from the business owner: keep the exception with this report."),
        ),
        Some(s) => (
            CostOutcome::NeedsOwnerApproval,
            format!("Monthly spend {s} is above the {basis}: needs owner approval before any phase that spends it starts. Higher ceilings: $500/month after $10,000 MRR, $1,000/month after $25,000 MRR, or a written launch-risk exception."),
        ),
    };
    CostVerdict {
        outcome,
        ceiling,
        monthly_spend: c.monthly_spend,
        mrr: c.mrr,
        launch_risk_exception: c.launch_risk_exception,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(cents: i64) -> Money {
        Money::from_minor(cents, Currency::USD)
    }

    fn route(route: &str, samples: u64, p95_us: i64, p99_us: i64) -> RoutePercentiles {
        RoutePercentiles {
            kind: SampleKind::Server,
            route: route.into(),
            samples,
            weight_micros: u128::from(samples) * 1_000_000,
            p50_us: 1,
            p95_us,
            p99_us,
        }
    }

    #[test]
    fn stop_condition_when_every_route_meets_the_slos() {
        let slo = Slo { p95_ms: Some(800), p99_ms: Some(2000) };
        let v = judge_slo(slo, &[route("/a", 500, 800_000, 2_000_000), route("/b", 10, 5, 9_000_000)], 7);
        assert_eq!(v.outcome, SloOutcome::Met);
        assert!(v.text.contains(STOP_CONDITION), "{}", v.text);
        assert_eq!(v.p99_not_judged, ["server /b"], "a p99 from 10 samples is not judged");
    }

    #[test]
    fn breaching_routes_are_listed() {
        let slo = Slo { p95_ms: Some(800), p99_ms: Some(2000) };
        let v = judge_slo(slo, &[route("/a", 500, 800_001, 2_000_001), route("/b", 500, 1, 1)], 7);
        assert_eq!(v.outcome, SloOutcome::Breached);
        assert_eq!(v.breaches.len(), 2);
        assert!(v.breaches.iter().all(|b| b.route == "/a"));
        assert!(!v.text.contains(STOP_CONDITION));
        assert!(v.text.starts_with("1 route(s) breach"));
    }

    #[test]
    fn no_slo_or_no_data_is_said_plainly() {
        assert_eq!(judge_slo(Slo::default(), &[route("/a", 1, 1, 1)], 7).outcome, SloOutcome::NotConfigured);
        assert_eq!(judge_slo(Slo { p95_ms: Some(1), p99_ms: None }, &[], 7).outcome, SloOutcome::NoData);
    }

    #[test]
    fn load_target_parses_and_explains_errors() {
        let t: LoadTarget = "1,000 sessions by 2026-09-01: spring launch".parse().unwrap();
        assert_eq!((t.sessions, t.by.to_string(), t.reason.as_str()), (1000, "2026-09-01".into(), "spring launch"));
        for bad in [
            "1000 sessions by 2026-09-01",
            "many sessions by 2026-09-01: x",
            "1000 users by 2026-09-01: x",
            "1000 sessions by 09/01/2026: x",
            "0 sessions by 2026-09-01: x",
            "1000 sessions by 2026-09-01:  ",
        ] {
            let e = bad.parse::<LoadTarget>().unwrap_err();
            assert!(e.contains("N sessions by YYYY-MM-DD: reason"), "{bad}: {e}");
        }
        let today = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert!(judge_load(None, today).text.contains(NO_ANCHOR));
        assert!(judge_load(Some(&t), today).text.contains("date has passed"));
    }

    #[test]
    fn cost_gate_ceilings_follow_mrr_in_cents() {
        let d = dollars;
        assert_eq!(monthly_ceiling(None), usd(d(250)));
        assert_eq!(monthly_ceiling(Some(usd(d(10_000) - 1))), usd(d(250)));
        assert_eq!(monthly_ceiling(Some(usd(d(10_000)))), usd(d(500)));
        assert_eq!(monthly_ceiling(Some(usd(d(25_000)))), usd(d(1_000)));
        let gate = |spend: i64, mrr: Option<i64>, ex: bool| {
            judge_cost(&CostInputs::new(Some(usd(spend)), mrr.map(usd), ex).unwrap()).outcome
        };
        assert_eq!(gate(d(250), None, false), CostOutcome::WithinCeiling);
        assert_eq!(gate(d(250) + 1, None, false), CostOutcome::NeedsOwnerApproval);
        assert_eq!(gate(d(250) + 1, None, true), CostOutcome::LaunchRiskException);
        assert_eq!(gate(d(500), Some(d(10_000)), false), CostOutcome::WithinCeiling);
        assert_eq!(gate(d(1_000) + 1, Some(d(30_000)), false), CostOutcome::NeedsOwnerApproval);
        let v = judge_cost(&CostInputs::new(Some(usd(d(300))), None, false).unwrap());
        assert!(
            v.text.contains("needs owner approval") && v.text.contains("$300.00") && v.text.contains("$250.00"),
            "{}",
            v.text
        );
        assert_eq!(judge_cost(&CostInputs::default()).outcome, CostOutcome::NotGiven);
        assert!(CostInputs::new(Some(Money::from_minor(1, Currency::EUR)), None, false).is_err());
        assert!(CostInputs::new(None, Some(usd(-1)), false).is_err());
    }
}
