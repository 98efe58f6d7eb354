//! The health settings: the overall deadline, read from `HEALTH_TIMEOUT_MS`.

use keel_config::Reader;
use std::time::Duration;

/// The environment variable holding the overall deadline in milliseconds.
pub const HEALTH_TIMEOUT_VAR: &str = "HEALTH_TIMEOUT_MS";
/// Two seconds: above the Kubernetes default probe timeout of one second is deliberate, since
/// operators who keep that default should raise `timeoutSeconds` rather than get false 503s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(DEFAULT_MS);
const DEFAULT_MS: u64 = 2_000;
const MIN_MS: u64 = 10;
const MAX_MS: u64 = 60_000;

/// How long a health run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Every check and section answers (or is cut off) within this long of the run's start.
    pub deadline: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { deadline: DEFAULT_DEADLINE }
    }
}

impl HealthConfig {
    /// Every check answers within `deadline`.
    pub fn new(deadline: Duration) -> Self {
        Self { deadline }
    }

    /// Reads `HEALTH_TIMEOUT_MS` (a whole number of milliseconds from 10 to 60000, default
    /// 2000); a bad value is recorded as a problem on `r` and the default is used.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let ms = r.int_in(HEALTH_TIMEOUT_VAR, DEFAULT_MS, MIN_MS, MAX_MS);
        Self { deadline: Duration::from_millis(ms) }
    }
}
