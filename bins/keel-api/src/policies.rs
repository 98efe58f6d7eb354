//! Keel's rate-limit policies, defined in one place, each overridable from the environment
//! with `KEEL_RATE_LIMIT_<POLICY>=60/1m,burst=60`. keel-ratelimit supplies the building blocks
//! ([`Policy`], [`Quota`]); which policies exist and their defaults are this server's.

use keel_config::{Problems, Reader, Source};
use keel_ratelimit::{Backend, KeyKind, Policy, Quota};
use std::time::Duration;

/// The prefix of every policy override variable.
pub(crate) const ENV_PREFIX: &str = "KEEL_RATE_LIMIT_";

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const ADMIN_API: Quota = Quota::from_static(60, MINUTE, 60);
const PUBLIC_INGRESS: Quota = Quota::from_static(120, MINUTE, 60);
const TELEMETRY_INGEST: Quota = Quota::from_static(600, MINUTE, 120);
const PASSWORD_RECOVERY: Quota = Quota::from_static(5, HOUR, 3);
const SIGN_IN_FAILURES: Quota = Quota::from_static(10, Duration::from_secs(15 * 60), 10);
/// Four tabs of the console refreshing every 2 s, each refresh a handful of requests, is about
/// 10 per second: 600 a minute sustained, bursts of 120 (opening several pages at once).
const OPERATOR_CONSOLE: Quota = Quota::from_static(600, MINUTE, 120);

/// `KEEL_RATE_LIMIT_<NAME>`, e.g. `KEEL_RATE_LIMIT_ADMIN_API`.
pub(crate) fn env_var(policy: &Policy) -> String {
    format!("{ENV_PREFIX}{}", policy.name.to_ascii_uppercase())
}

/// Keel's policies.
///
/// | policy | default | backend | key |
/// |---|---|---|---|
/// | `admin_api` | `60/1m,burst=60` | in process | user, else client IP |
/// | `public_ingress` | `120/1m,burst=60` | shared, fails closed | client IP |
/// | `telemetry_ingest` | `600/1m,burst=120` | in process | client IP |
/// | `password_recovery` | `5/1h,burst=3` | shared, fails closed | normalised email |
/// | `sign_in_failures` | `10/15m,burst=10` | shared, fails closed | normalised email |
/// | `operator_console` | `600/1m,burst=120` | in process | user, else client IP |
///
/// - `admin_api` is the floor under every `/api/admin/*` route, in process so ordinary admin
///   reads never pay a database round trip before authentication. 60 back to back, then one per
///   second.
/// - `public_ingress` guards unauthenticated and token-based surfaces across all instances:
///   2 per second sustained per client network, bursts of 60 (a page load fanning out), and
///   at most 179 in any rolling minute.
/// - `telemetry_ingest` accepts sampled browser timings without a database round trip before
///   the write: 10 per second sustained per client, bursts of 120 (a tab flushing its buffer).
/// - `password_recovery` is keyed by the address being recovered, so rotating IPs gains
///   nothing; shared, because a per-instance limit would multiply the allowance by the number of
///   instances, and this policy exists to stop mailbox flooding. 3 at once, then one per 12
///   minutes; at most 7 in any rolling hour. Over the limit the endpoint still answers 202 and
///   queues nothing, so the limit reveals nothing about which accounts exist.
/// - `sign_in_failures` counts failed sign-ins per account address, whatever the client
///   address, so guessing from many addresses gains nothing; shared, so instances do not
///   multiply it. 10 failures at once, then one more per 90 s. The caller spends one unit per
///   attempt and clears the key on success (`SharedLimiter::clear`), so only failures
///   accumulate; unknown addresses are counted exactly like known ones.
/// - `operator_console` covers `/console` pages and `/api/ops/*`: generous enough for a few open
///   tabs refreshing every few seconds (10 per second sustained per operator, bursts of 120), in
///   process so a refresh never pays a database round trip before authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    pub admin_api: Policy,
    pub public_ingress: Policy,
    pub telemetry_ingest: Policy,
    pub password_recovery: Policy,
    pub sign_in_failures: Policy,
    pub operator_console: Policy,
}

impl Default for Policies {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Policies {
    pub fn defaults() -> Self {
        Self {
            admin_api: Policy::new("admin_api", ADMIN_API).with_key(KeyKind::UserOrClientIp),
            public_ingress: Policy::new("public_ingress", PUBLIC_INGRESS).with_backend(Backend::Shared),
            telemetry_ingest: Policy::new("telemetry_ingest", TELEMETRY_INGEST),
            password_recovery: Policy::new("password_recovery", PASSWORD_RECOVERY)
                .with_backend(Backend::Shared)
                .with_key(KeyKind::Email),
            sign_in_failures: Policy::new("sign_in_failures", SIGN_IN_FAILURES)
                .with_backend(Backend::Shared)
                .with_key(KeyKind::Email),
            operator_console: Policy::new("operator_console", OPERATOR_CONSOLE).with_key(KeyKind::UserOrClientIp),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        [
            &self.admin_api,
            &self.public_ingress,
            &self.telemetry_ingest,
            &self.password_recovery,
            &self.sign_in_failures,
            &self.operator_console,
        ]
        .into_iter()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Policy> {
        [
            &mut self.admin_api,
            &mut self.public_ingress,
            &mut self.telemetry_ingest,
            &mut self.password_recovery,
            &mut self.sign_in_failures,
            &mut self.operator_console,
        ]
        .into_iter()
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.iter().find(|p| &*p.name == name)
    }

    /// Applies `KEEL_RATE_LIMIT_<POLICY>` overrides, recording a problem naming the variable for
    /// each value that does not parse (the default stays in force for it), and for each
    /// `KEEL_RATE_LIMIT_*` variable that names no policy (a typo would otherwise be silently
    /// ignored).
    pub fn read(r: &mut Reader<'_>) -> Self {
        let mut policies = Self::defaults();
        for p in policies.iter_mut() {
            let var = env_var(p);
            if let Some(v) = r.raw(&var) {
                match v.parse::<Quota>() {
                    Ok(q) => p.quota = q,
                    Err(e) => r.problem(
                        &var,
                        format!("{e} (the format is <requests>/<period>[,burst=<n>], e.g. 60/1m,burst=60)"),
                    ),
                }
            }
        }
        let known: Vec<String> = policies.iter().map(env_var).collect();
        let mut unknown: Vec<String> =
            r.source().keys().into_iter().filter(|k| k.starts_with(ENV_PREFIX) && !known.contains(k)).collect();
        unknown.sort();
        for var in unknown {
            r.problem(&var, format!("names no rate-limit policy; the policies are {}", known.join(", ")));
        }
        policies
    }

    /// The policies from `source`, or every problem found.
    pub fn from_source(source: &dyn Source) -> Result<Self, Problems> {
        let mut r = Reader::new(source);
        let policies = Self::read(&mut r);
        r.finish().map(|()| policies)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;
    use keel_ratelimit::FailureMode;

    #[test]
    fn defaults_are_the_documented_ones() {
        let p = Policies::defaults();
        let expect = |s: &str| s.parse::<Quota>().unwrap();
        assert_eq!(p.admin_api.quota, expect("60/1m,burst=60"));
        assert_eq!(p.public_ingress.quota, expect("120/1m,burst=60"));
        assert_eq!(p.telemetry_ingest.quota, expect("600/1m,burst=120"));
        assert_eq!(p.password_recovery.quota, expect("5/1h,burst=3"));
        assert_eq!((p.admin_api.backend, p.admin_api.key), (Backend::InProcess, KeyKind::UserOrClientIp));
        assert_eq!((p.public_ingress.backend, p.public_ingress.on_outage), (Backend::Shared, FailureMode::Closed));
        assert_eq!((p.telemetry_ingest.backend, p.telemetry_ingest.key), (Backend::InProcess, KeyKind::ClientIp));
        assert_eq!((p.password_recovery.key, p.password_recovery.backend), (KeyKind::Email, Backend::Shared));
        assert_eq!(p.password_recovery.on_outage, FailureMode::Closed);
        assert_eq!(env_var(&p.admin_api), "KEEL_RATE_LIMIT_ADMIN_API");
        assert_eq!(&*p.get("telemetry_ingest").unwrap().name, "telemetry_ingest");
        assert!(p.get("nope").is_none());
        assert_eq!(p.sign_in_failures.quota, expect("10/15m,burst=10"));
        assert_eq!((p.sign_in_failures.key, p.sign_in_failures.backend), (KeyKind::Email, Backend::Shared));
        assert_eq!(env_var(&p.sign_in_failures), "KEEL_RATE_LIMIT_SIGN_IN_FAILURES");
        assert_eq!(p.operator_console.quota, expect("600/1m,burst=120"));
        assert_eq!((p.operator_console.backend, p.operator_console.key), (Backend::InProcess, KeyKind::UserOrClientIp));
        assert_eq!(env_var(&p.operator_console), "KEEL_RATE_LIMIT_OPERATOR_CONSOLE");
        assert_eq!(p.iter().count(), 6);
        assert_eq!(p.password_recovery.quota.max_in_window(HOUR), 7);
        assert_eq!(p.public_ingress.quota.max_in_window(MINUTE), 179);
    }

    #[test]
    fn overrides_apply() {
        let src = MapSource::new([
            ("KEEL_RATE_LIMIT_ADMIN_API", "30/1m,burst=10"),
            ("KEEL_RATE_LIMIT_PASSWORD_RECOVERY", "3/hour"),
            ("KEEL_RATE_LIMIT_TELEMETRY_INGEST", "  "),
        ]);
        let p = Policies::from_source(&src).unwrap();
        assert_eq!(p.admin_api.quota.to_string(), "30/1m,burst=10");
        assert_eq!(p.password_recovery.quota.to_string(), "3/1h,burst=3");
        assert_eq!(p.telemetry_ingest.quota, Policies::defaults().telemetry_ingest.quota, "blank means unset");
        let limiter = p.admin_api.in_process_limiter();
        assert_eq!(limiter.policy(), "admin_api");
        assert_eq!(limiter.quota().burst(), 10);
    }

    #[test]
    fn every_problem_names_its_variable() {
        let src = MapSource::new([
            ("KEEL_RATE_LIMIT_ADMIN_API", "60 per minute"),
            ("KEEL_RATE_LIMIT_PUBLIC_INGRESS", "60/1m,burst=0"),
            ("KEEL_RATE_LIMIT_ADMIN", "60/1m"),
            ("KEEL_OTHER", "x"),
        ]);
        let problems = Policies::from_source(&src).unwrap_err().0;
        let vars: Vec<&str> = problems.iter().map(|p| p.var.as_str()).collect();
        assert_eq!(vars, ["KEEL_RATE_LIMIT_ADMIN_API", "KEEL_RATE_LIMIT_PUBLIC_INGRESS", "KEEL_RATE_LIMIT_ADMIN"]);
        assert!(problems[0].message.contains("60/1m,burst=60"), "{}", problems[0].message);
        assert!(problems[1].message.contains("burst \"0\""), "{}", problems[1].message);
        assert!(problems[2].message.contains("KEEL_RATE_LIMIT_ADMIN_API"), "{}", problems[2].message);
    }

    #[tokio::test]
    async fn each_policy_builds_the_limiter_it_declares() {
        let t = keel_testkit::TestDb::sqlite(crate::SCHEMAS).await;
        for policy in Policies::defaults().iter() {
            let l = policy.limiter(&t.db);
            assert_eq!(l.policy(), &*policy.name);
            assert_eq!(*l.quota(), policy.quota);
            let in_process = l.metrics().max_keys.is_some();
            assert_eq!(in_process, policy.backend == Backend::InProcess, "{}", policy.name);
        }
    }
}
