//! Every rate-limit policy Keel applies, defined in one place, each overridable from the env.

use crate::{KeyedLimiter, LimitKey, Limiter, Quota, SharedLimiter, DEFAULT_MAX_KEYS};
use keel_config::{Problems, Reader, Source};
use keel_storage::Db;
use std::sync::Arc;
use std::time::Duration;

/// Where a policy's counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In this process: no I/O per decision, but each instance counts separately, so N instances
    /// admit up to N times the quota. Right for floors whose job is to stop floods cheaply.
    InProcess,
    /// In the database, shared by every instance: one statement per decision.
    Shared,
}

/// What a shared policy does when the database cannot decide in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Refuse with 503 and `Retry-After: 1` (the default: a limiter exists to protect something).
    Closed,
    /// Admit the request unlimited, and log.
    Open,
}

/// What a policy counts requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The client network ([`LimitKey::ip`]).
    ClientIp,
    /// The authenticated user, else the client network when there is no usable session.
    UserOrClientIp,
    /// The normalised email address in the request ([`LimitKey::email`]).
    Email,
}

/// One named policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: &'static str,
    pub quota: Quota,
    pub backend: Backend,
    pub key: KeyKind,
    /// Only consulted by the shared backend.
    pub on_outage: FailureMode,
    /// Only consulted by the in-process backend: the hard cap on tracked keys.
    pub max_keys: usize,
}

impl Policy {
    /// `KEEL_RATE_LIMIT_<NAME>`, e.g. `KEEL_RATE_LIMIT_ADMIN_API`.
    pub fn env_var(&self) -> String {
        env_var(self.name)
    }

    /// An in-process limiter for this policy on the real clock.
    pub fn in_process_limiter(&self) -> KeyedLimiter<LimitKey> {
        KeyedLimiter::new(self.name, self.quota).max_keys(self.max_keys)
    }

    /// The limiter this policy declares: in process, or shared through `db`.
    pub fn limiter(&self, db: &Db) -> Arc<dyn Limiter> {
        match self.backend {
            Backend::InProcess => Arc::new(self.in_process_limiter()),
            Backend::Shared => Arc::new(SharedLimiter::new(db.clone(), self)),
        }
    }
}

fn env_var(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

/// The prefix of every policy override variable.
pub const ENV_PREFIX: &str = "KEEL_RATE_LIMIT_";

fn quota(count: u32, period: Duration, burst: u32) -> Quota {
    // Only called with the constants below, which the tests check against `Quota::new`.
    Quota::from_valid_parts(count, period, burst)
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
///   attempt and clears the key on success ([`SharedLimiter::clear`]), so only failures
///   accumulate; unknown addresses are counted exactly like known ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    pub admin_api: Policy,
    pub public_ingress: Policy,
    pub telemetry_ingest: Policy,
    pub password_recovery: Policy,
    pub sign_in_failures: Policy,
}

impl Default for Policies {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Policies {
    pub fn defaults() -> Self {
        let minute = Duration::from_secs(60);
        let base = |name, quota, backend, key| Policy {
            name,
            quota,
            backend,
            key,
            on_outage: FailureMode::Closed,
            max_keys: DEFAULT_MAX_KEYS,
        };
        Self {
            admin_api: base("admin_api", quota(60, minute, 60), Backend::InProcess, KeyKind::UserOrClientIp),
            public_ingress: base("public_ingress", quota(120, minute, 60), Backend::Shared, KeyKind::ClientIp),
            telemetry_ingest: base("telemetry_ingest", quota(600, minute, 120), Backend::InProcess, KeyKind::ClientIp),
            password_recovery: base(
                "password_recovery",
                quota(5, Duration::from_secs(3_600), 3),
                Backend::Shared,
                KeyKind::Email,
            ),
            sign_in_failures: base(
                "sign_in_failures",
                quota(10, Duration::from_secs(15 * 60), 10),
                Backend::Shared,
                KeyKind::Email,
            ),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        [&self.admin_api, &self.public_ingress, &self.telemetry_ingest, &self.password_recovery, &self.sign_in_failures]
            .into_iter()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Policy> {
        [
            &mut self.admin_api,
            &mut self.public_ingress,
            &mut self.telemetry_ingest,
            &mut self.password_recovery,
            &mut self.sign_in_failures,
        ]
        .into_iter()
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.iter().find(|p| p.name == name)
    }

    /// Applies `KEEL_RATE_LIMIT_<POLICY>` overrides, recording a problem naming the variable for
    /// each value that does not parse (the default stays in force for it), and for each
    /// `KEEL_RATE_LIMIT_*` variable that names no policy (a typo would otherwise be silently
    /// ignored).
    pub fn read(r: &mut Reader<'_>) -> Self {
        let mut policies = Self::defaults();
        for p in policies.iter_mut() {
            let var = p.env_var();
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
        let known: Vec<String> = policies.iter().map(Policy::env_var).collect();
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

    /// The policies from a lookup function (e.g. `|k| std::env::var(k).ok()`). Unlike
    /// [`Policies::from_source`] it cannot list variables, so misspelt names go unreported.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Problems> {
        struct Lookup<F>(F);
        impl<F: Fn(&str) -> Option<String>> Source for Lookup<F> {
            fn get(&self, key: &str) -> Option<String> {
                (self.0)(key)
            }
            fn keys(&self) -> Vec<String> {
                Vec::new()
            }
        }
        Self::from_source(&Lookup(lookup))
    }
}
