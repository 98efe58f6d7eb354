//! `Quota`: "N requests per period with burst B", and its text form `60/1m,burst=60`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The longest period a quota may have. Longer windows are a job for a billing meter, and the
/// bound keeps every nanosecond sum in the GCRA far from `u64`/`i64` overflow.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

/// A rate: `count` requests per `period`, with up to `burst` admitted back to back.
///
/// Internally this is a GCRA with emission interval `T = period / count` (rounded down to whole
/// nanoseconds, so the limiter errs by at most 1 ns per request in the client's favour) and
/// tolerance `tau = T * (burst - 1)`. See the crate documentation for exactly what it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: u32,
    emission_ns: u64,
    tau_ns: u64,
}

/// Why a quota could not be built or parsed; each message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// Nothing was given.
    #[error("is empty: use a limit like 60/1m or 60/1m,burst=60")]
    Empty,
    /// Not `<requests>/<period>[,burst=<n>]`.
    #[error("must look like <requests>/<period>[,burst=<n>], e.g. 60/1m,burst=60; got {0:?}")]
    Shape(String),
    /// The request count is not a whole number from 1.
    #[error("request count {0:?} must be a whole number from 1 to 4294967295")]
    Count(String),
    /// The period is not a duration or unit.
    #[error("period {0:?} must be a duration like 1s, 1m, 1h, 1d or 500ms, or a unit like min or hour")]
    Period(String),
    /// The period is below 1 ms or not whole milliseconds.
    #[error("period must be at least 1ms and a whole number of milliseconds")]
    PeriodPrecision,
    /// The period is above [`MAX_PERIOD`].
    #[error("period must be at most 366 days")]
    PeriodTooLong,
    /// The burst is not a whole number from 1.
    #[error("burst {0:?} must be a whole number from 1 to 4294967295 (burst=1 means no burst)")]
    Burst(String),
    /// `burst=` appears twice.
    #[error("burst is given twice")]
    DuplicateBurst,
    /// An option other than `burst=`.
    #[error("unknown option {0:?}: the only option is burst=<n>")]
    UnknownOption(String),
    /// More than one request per nanosecond.
    #[error("{count} per {period:?} is more than one request per nanosecond")]
    TooFine {
        /// The request count given.
        count: u32,
        /// The period given.
        period: Duration,
    },
    /// The burst takes longer than [`MAX_PERIOD`] to earn back.
    #[error("burst {burst} at one request per {interval:?} spans more than 366 days; lower the burst")]
    BurstTooLong {
        /// The burst given.
        burst: u32,
        /// The emission interval `P / N`.
        interval: Duration,
    },
}

impl Quota {
    /// `count` requests per `period`, admitting up to `burst` at once.
    pub fn new(count: u32, period: Duration, burst: u32) -> Result<Self, QuotaError> {
        if count == 0 {
            return Err(QuotaError::Count("0".into()));
        }
        if burst == 0 {
            return Err(QuotaError::Burst("0".into()));
        }
        if period < Duration::from_millis(1) || period.subsec_nanos() % 1_000_000 != 0 {
            return Err(QuotaError::PeriodPrecision);
        }
        if period > MAX_PERIOD {
            return Err(QuotaError::PeriodTooLong);
        }
        // Bounded by MAX_PERIOD, so this fits in u64 (3.2e16 ns).
        let period_ns = period.as_nanos() as u64;
        let emission_ns = period_ns / u64::from(count);
        if emission_ns == 0 {
            return Err(QuotaError::TooFine { count, period });
        }
        let tau_ns = emission_ns.saturating_mul(u64::from(burst - 1));
        if tau_ns > MAX_PERIOD.as_nanos() as u64 {
            return Err(QuotaError::BurstTooLong { burst, interval: Duration::from_nanos(emission_ns) });
        }
        Ok(Self { count, period, burst, emission_ns, tau_ns })
    }

    /// [`Quota::new`] for constants written in code: in a `const` item an invalid quota is a
    /// compile error, as with `http::HeaderName::from_static`. Input (settings, requests) goes
    /// through [`Quota::new`] or `parse`, never here: called outside a `const` with invalid
    /// parts this panics.
    ///
    /// ```
    /// use keel_ratelimit::Quota;
    /// use std::time::Duration;
    ///
    /// const LOGIN: Quota = Quota::from_static(5, Duration::from_secs(60), 5);
    /// assert_eq!(LOGIN, "5/1m".parse().unwrap());
    /// ```
    pub const fn from_static(count: u32, period: Duration, burst: u32) -> Self {
        assert!(count > 0, "a quota's request count must be at least 1");
        assert!(burst > 0, "a quota's burst must be at least 1");
        let period_ns = period.as_nanos();
        assert!(
            period_ns >= 1_000_000 && period.subsec_nanos() % 1_000_000 == 0,
            "a quota's period must be a whole number of milliseconds, at least 1ms"
        );
        assert!(period_ns <= MAX_PERIOD.as_nanos(), "a quota's period must be at most 366 days");
        let emission_ns = period_ns as u64 / count as u64;
        assert!(emission_ns > 0, "a quota may admit at most one request per nanosecond");
        let tau_ns = emission_ns.saturating_mul(burst as u64 - 1);
        assert!(tau_ns <= MAX_PERIOD.as_nanos() as u64, "a quota's burst may span at most 366 days");
        Self { count, period, burst, emission_ns, tau_ns }
    }

    /// `count` per `period` with a burst of `count` (the conventional reading of "60/min").
    pub fn per(count: u32, period: Duration) -> Result<Self, QuotaError> {
        Self::new(count, period, count)
    }

    /// The same rate with another burst.
    pub fn with_burst(self, burst: u32) -> Result<Self, QuotaError> {
        Self::new(self.count, self.period, burst)
    }

    /// `N`: requests per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// `P`: the period `N` requests are spread over.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// `B`: how many may arrive at once after a quiet spell.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// `T`: the steady-state spacing between admitted requests.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_nanos(self.emission_ns)
    }

    #[inline]
    pub(crate) fn emission_ns(&self) -> u64 {
        self.emission_ns
    }

    #[inline]
    pub(crate) fn tau_ns(&self) -> u64 {
        self.tau_ns
    }

    /// The period in whole seconds, rounded up, for the `w` parameter of `RateLimit-Policy`.
    pub fn window_secs(&self) -> u64 {
        self.period.as_secs() + u64::from(self.period.subsec_nanos() > 0)
    }

    /// The most requests this quota admits in any window of length `w` (half-open, `[a, a+w)`),
    /// when the key starts with a full bucket: `burst - 1 + ceil(w / T)`, at least `burst` for any
    /// `w > 0`. For `60/1m,burst=60` that is 60 within any one second and 119 within any minute.
    pub fn max_in_window(&self, w: Duration) -> u64 {
        let w = u64::try_from(w.as_nanos()).unwrap_or(u64::MAX);
        if w == 0 {
            return 0;
        }
        u64::from(self.burst) - 1 + w.div_ceil(self.emission_ns)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{},burst={}", self.count, format_period(self.period), self.burst)
    }
}

fn format_period(p: Duration) -> String {
    let ms = p.as_millis();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

impl FromStr for Quota {
    type Err = QuotaError;

    /// Parses `<requests>/<period>[,burst=<n>]`: `60/1m`, `60/min`, `60/1m,burst=60`,
    /// `5/1h,burst=3`, `10/1s`. Without `burst`, the burst equals the request count.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(QuotaError::Empty);
        }
        let mut parts = s.split(',');
        let rate = parts.next().unwrap_or_default();
        let Some((count, period)) = rate.split_once('/') else {
            return Err(QuotaError::Shape(s.to_owned()));
        };
        let count_text = count.trim();
        let count: u32 = match count_text.parse() {
            Ok(0) | Err(_) => return Err(QuotaError::Count(count_text.to_owned())),
            Ok(n) => n,
        };
        let period = parse_period(period.trim())?;
        let mut burst = None;
        for option in parts {
            let option = option.trim();
            match option.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("burst") => {
                    if burst.is_some() {
                        return Err(QuotaError::DuplicateBurst);
                    }
                    let v = v.trim();
                    match v.parse::<u32>() {
                        Ok(0) | Err(_) => return Err(QuotaError::Burst(v.to_owned())),
                        Ok(n) => burst = Some(n),
                    }
                }
                _ => return Err(QuotaError::UnknownOption(option.to_owned())),
            }
        }
        Quota::new(count, period, burst.unwrap_or(count))
    }
}

/// `1m`, `30s`, `500ms`, `2h`, `1d`, or a bare unit meaning one of it: `s`, `sec`, `second`,
/// `m`, `min`, `minute`, `h`, `hr`, `hour`, `d`, `day`.
fn parse_period(p: &str) -> Result<Duration, QuotaError> {
    let p = p.to_ascii_lowercase();
    let bare = match p.as_str() {
        "s" | "sec" | "second" => Some(Duration::from_secs(1)),
        "m" | "min" | "minute" => Some(Duration::from_secs(60)),
        "h" | "hr" | "hour" => Some(Duration::from_secs(3_600)),
        "d" | "day" => Some(Duration::from_secs(86_400)),
        _ => None,
    };
    if let Some(d) = bare {
        return Ok(d);
    }
    match keel_config::parse_duration(&p) {
        Some(d) if d.is_zero() => Err(QuotaError::PeriodPrecision),
        Some(d) => Ok(d),
        None => Err(QuotaError::Period(p)),
    }
}
