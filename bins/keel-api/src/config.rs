//! keel-api's configuration: the shared settings plus the server's own, read in one pass.

use crate::Policies;
use keel_config::{Problems, Reader, Settings, Source};
use keel_ratelimit::TrustedProxies;
use std::net::SocketAddr;
use std::time::Duration;

/// JSON bodies larger than this are refused with 413 before they are parsed.
pub const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;

/// The CIDR list of proxies whose forwarding headers are believed.
pub(crate) const TRUSTED_PROXIES_VAR: &str = "KEEL_TRUSTED_PROXIES";

/// `KEEL_REQUEST_TIMEOUT`'s default.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// The embedded worker's settings (queue sizing, mail, webhooks, the job encryption keys,
    /// `KEEL_PUBLIC_URL` and `KEEL_PASSWORD_RESET_TTL`), read with everything else.
    pub worker: keel_worker::WorkerConfig,
    pub switches: keel_queue::SwitchBoard,
    pub health: keel_health::HealthConfig,
    pub cache: keel_orgcache::CacheConfig,
    pub telemetry: keel_telemetry::TelemetrySettings,
    pub rate_limits: Policies,
    pub trusted_proxies: TrustedProxies,
    pub cors: CorsOrigins,
    /// `KEEL_SESSION_TTL`: how long a browser session lives without activity.
    pub session_ttl: Duration,
    /// `KEEL_BODY_LIMIT_BYTES`.
    pub body_limit: u64,
    /// `KEEL_SIGN_IN_TIMEOUT`: the sign-in time budget; past it the client gets 503 + Retry-After.
    pub sign_in_timeout: Duration,
    /// `KEEL_REQUEST_TIMEOUT`: the time budget of every `/api/admin/*` and `/api/auth/*`
    /// request; past it the client gets 503 + Retry-After.
    pub request_timeout: Duration,
    /// `KEEL_REPORT_MAX_DAYS`: the widest date range a report accepts.
    pub report_max_days: u32,
    /// `KEEL_METRICS_BIND`: where `/metrics` is served, off the public port.
    pub metrics_bind: SocketAddr,
    /// `KEEL_HTTP_HEADER_TIMEOUT`, `KEEL_HTTP_IDLE_TIMEOUT`, `KEEL_HTTP_MAX_CONNECTIONS`: the
    /// connection limits of both listeners.
    pub http: HttpLimits,
}

/// How long a connection may take to send a request's headers, how long it may sit idle
/// between requests, and how many connections one listener holds at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `KEEL_HTTP_HEADER_TIMEOUT`: from the first byte of a request to the end of its headers.
    pub header_timeout: Duration,
    /// `KEEL_HTTP_IDLE_TIMEOUT`: a connection with no request in flight and nothing sent or
    /// received for this long is closed.
    pub idle_timeout: Duration,
    /// `KEEL_HTTP_MAX_CONNECTIONS`: past it, new connections wait in the kernel's listen backlog.
    pub max_connections: usize,
}

/// `KEEL_HTTP_MAX_CONNECTIONS`' default: well above the thousand slow or idle sockets a single
/// misbehaving client can hold (the timeouts close those), and well below the usual descriptor
/// limit of a service (`LimitNOFILE`, 64k or more), which also has to cover database
/// connections and the listeners themselves.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl HttpLimits {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let d = Self::default();
        let header_timeout = r.duration("KEEL_HTTP_HEADER_TIMEOUT", d.header_timeout);
        let idle_timeout = r.duration("KEEL_HTTP_IDLE_TIMEOUT", d.idle_timeout);
        for (var, v) in [("KEEL_HTTP_HEADER_TIMEOUT", header_timeout), ("KEEL_HTTP_IDLE_TIMEOUT", idle_timeout)] {
            // Zero would close every connection before its first request.
            if v.is_zero() {
                r.problem(var, "must be longer than zero, like 10s or 500ms");
            }
        }
        // One connection would let a single keep-alive client lock everyone else out; a million
        // is past any descriptor limit a process is given.
        let max_connections = r.int_in("KEEL_HTTP_MAX_CONNECTIONS", d.max_connections as u64, 2, 1_000_000) as usize;
        Self { header_timeout, idle_timeout, max_connections }
    }
}

impl Config {
    /// Reads everything, collecting every problem before reporting.
    pub fn load(source: &dyn Source) -> Result<Config, Problems> {
        let mut r = Reader::new(source);
        let settings = Settings::read(&mut r);
        let (worker, mut extra) = keel_worker::WorkerConfig::read(&mut r, settings.clone());
        let switches = match keel_queue::SwitchBoard::from_source(source) {
            Ok(s) => s,
            Err(p) => {
                extra.extend(p.0);
                keel_queue::SwitchBoard::default()
            }
        };
        let health = keel_health::HealthConfig::read(&mut r);
        let cache = crate::cache::read(&mut r);
        let telemetry = keel_telemetry::TelemetrySettings::read(&mut r);
        let rate_limits = Policies::read(&mut r);
        let trusted_proxies = TrustedProxies::read(&mut r, TRUSTED_PROXIES_VAR);
        let cors = CorsOrigins::read(&mut r);
        let session_ttl = r.duration("KEEL_SESSION_TTL", Duration::from_secs(12 * 3600));
        let body_limit = r.int_in("KEEL_BODY_LIMIT_BYTES", DEFAULT_BODY_LIMIT, 1024, 64 * 1024 * 1024);
        let sign_in_timeout = r.duration("KEEL_SIGN_IN_TIMEOUT", Duration::from_secs(15));
        // 30 s: the exact revenue report over a large org drains every page in one request
        // (about 4 s at a million invoices), and a budget below that would fail it every time.
        let request_timeout = r.duration("KEEL_REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT);
        for (var, d) in [("KEEL_SIGN_IN_TIMEOUT", sign_in_timeout), ("KEEL_REQUEST_TIMEOUT", request_timeout)] {
            // A zero budget would refuse every request; it is never what an operator meant.
            if d.is_zero() {
                r.problem(var, "must be longer than zero, like 500ms or 30s");
            }
        }
        let report_max_days = r.int_in("KEEL_REPORT_MAX_DAYS", 366, 1, 3660) as u32;
        let metrics_bind = r.parse(
            "KEEL_METRICS_BIND",
            SocketAddr::from(([127, 0, 0, 1], 9090)),
            "an address like 127.0.0.1:9090 (keep it off the public network)",
        );
        if metrics_bind == settings.bind && metrics_bind.port() != 0 {
            r.problem("KEEL_METRICS_BIND", "must differ from KEEL_BIND: metrics are served on their own listener");
        }
        let http = HttpLimits::read(&mut r);
        let mut problems = r.into_problems();
        problems.extend(extra);
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Config {
            settings,
            worker,
            switches,
            health,
            cache,
            telemetry,
            rate_limits,
            trusted_proxies,
            cors,
            session_ttl,
            body_limit,
            sign_in_timeout,
            request_timeout,
            report_max_days,
            metrics_bind,
            http,
        })
    }
}

/// `KEEL_CORS_ALLOWED_ORIGINS`: exact origins (`https://app.example.com`) and single-label
/// wildcards (`https://*.example.com`, which matches `https://a.example.com` but not
/// `https://example.com` or `https://a.b.example.com`).
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins {
    exact: Vec<String>,
    /// (scheme://, .suffix) pairs.
    wildcard: Vec<(String, String)>,
}

impl CorsOrigins {
    pub fn read(r: &mut Reader<'_>) -> Self {
        let raw = r.string("KEEL_CORS_ALLOWED_ORIGINS", "");
        match Self::parse(&raw) {
            Ok(o) => o,
            Err(msg) => {
                r.problem("KEEL_CORS_ALLOWED_ORIGINS", msg);
                Self::default()
            }
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut o = Self::default();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let item = item.trim_end_matches('/').to_ascii_lowercase();
            let Some((scheme, host)) = item.split_once("://") else {
                return Err(format!("{item:?} is not an origin like https://app.example.com"));
            };
            if scheme != "http" && scheme != "https" {
                return Err(format!("{item:?} must use http or https"));
            }
            if host.is_empty() || host.contains('/') {
                return Err(format!("{item:?} must be scheme://host[:port] with no path"));
            }
            if let Some(suffix) = host.strip_prefix("*.") {
                if suffix.contains('*') || !suffix.contains('.') {
                    return Err(format!("{item:?}: a wildcard must look like https://*.example.com"));
                }
                o.wildcard.push((format!("{scheme}://"), format!(".{suffix}")));
            } else if host.contains('*') {
                return Err(format!("{item:?}: '*' is only allowed as the first label, like https://*.example.com"));
            } else {
                o.exact.push(item);
            }
        }
        Ok(o)
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.exact.contains(&origin) {
            return true;
        }
        self.wildcard.iter().any(|(scheme, suffix)| {
            origin
                .strip_prefix(scheme.as_str())
                .and_then(|h| h.strip_suffix(suffix.as_str()))
                .is_some_and(|label| !label.is_empty() && !label.contains('.') && !label.contains(':'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    #[test]
    fn request_timeout_defaults_to_30s_and_refuses_zero() {
        let c = Config::load(&MapSource::new([])).unwrap();
        assert_eq!(c.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.sign_in_timeout, Duration::from_secs(15));
        let c = Config::load(&MapSource::new([("KEEL_REQUEST_TIMEOUT", "300ms")])).unwrap();
        assert_eq!(c.request_timeout, Duration::from_millis(300));
        let p = Config::load(&MapSource::new([("KEEL_REQUEST_TIMEOUT", "0s"), ("KEEL_SIGN_IN_TIMEOUT", "0ms")]))
            .unwrap_err();
        let text = p.to_string();
        assert!(text.contains("KEEL_REQUEST_TIMEOUT") && text.contains("KEEL_SIGN_IN_TIMEOUT"), "{text}");
        let p = Config::load(&MapSource::new([("KEEL_REQUEST_TIMEOUT", "30")])).unwrap_err();
        assert!(p.to_string().contains("KEEL_REQUEST_TIMEOUT"), "a bare number has no unit: {p}");
    }

    #[test]
    fn http_limits_and_metrics_bind_have_defaults_and_are_validated() {
        let c = Config::load(&MapSource::new([])).unwrap();
        assert_eq!(c.http, HttpLimits::default());
        assert_eq!(c.http.header_timeout, Duration::from_secs(10));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.http.max_connections, 4096);
        assert_eq!(c.metrics_bind, SocketAddr::from(([127, 0, 0, 1], 9090)));
        let c = Config::load(&MapSource::new([
            ("KEEL_HTTP_HEADER_TIMEOUT", "250ms"),
            ("KEEL_HTTP_IDLE_TIMEOUT", "2s"),
            ("KEEL_HTTP_MAX_CONNECTIONS", "1500"),
            ("KEEL_METRICS_BIND", "0.0.0.0:9100"),
        ]))
        .unwrap();
        assert_eq!(c.http.header_timeout, Duration::from_millis(250));
        assert_eq!(c.http.idle_timeout, Duration::from_secs(2));
        assert_eq!(c.http.max_connections, 1500);
        assert_eq!(c.metrics_bind.port(), 9100);
        let text = Config::load(&MapSource::new([
            ("KEEL_HTTP_HEADER_TIMEOUT", "0s"),
            ("KEEL_HTTP_IDLE_TIMEOUT", "soon"),
            ("KEEL_HTTP_MAX_CONNECTIONS", "1"),
            ("KEEL_METRICS_BIND", "localhost"),
        ]))
        .unwrap_err()
        .to_string();
        for var in
            ["KEEL_HTTP_HEADER_TIMEOUT", "KEEL_HTTP_IDLE_TIMEOUT", "KEEL_HTTP_MAX_CONNECTIONS", "KEEL_METRICS_BIND"]
        {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
        let text =
            Config::load(&MapSource::new([("KEEL_BIND", "127.0.0.1:8080"), ("KEEL_METRICS_BIND", "127.0.0.1:8080")]))
                .unwrap_err()
                .to_string();
        assert!(text.contains("KEEL_METRICS_BIND") && text.contains("KEEL_BIND"), "{text}");
    }

    /// The library settings keel-api reads under its own names: each is still a contract.
    #[test]
    fn rate_limit_proxy_and_cache_variables_are_read() {
        let c = Config::load(&MapSource::new([
            ("KEEL_RATE_LIMIT_ADMIN_API", "30/1m,burst=10"),
            ("KEEL_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("KEEL_CACHE_TTL_SETTINGS", "1m"),
        ]))
        .unwrap();
        assert_eq!(c.rate_limits.admin_api.quota.to_string(), "30/1m,burst=10");
        assert!(c.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert_eq!(c.cache.bucket(crate::cache::SETTINGS).unwrap().ttl, Duration::from_secs(60));
        let text = Config::load(&MapSource::new([
            ("KEEL_RATE_LIMIT_ADMIN", "30/1m"),
            ("KEEL_TRUSTED_PROXIES", "10.1.0.1/16"),
            ("KEEL_CACHE_CAPACITY_MB_NOPE", "1"),
        ]))
        .unwrap_err()
        .to_string();
        for var in ["KEEL_RATE_LIMIT_ADMIN", "KEEL_TRUSTED_PROXIES", "KEEL_CACHE_CAPACITY_MB_NOPE"] {
            assert!(text.contains(var), "{var} not reported: {text}");
        }
    }
}
