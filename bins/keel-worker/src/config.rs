//! The worker's configuration: the shared settings, the queue's sizing and the built-in kinds'
//! settings, all read and reported together.

use crate::kinds::Sender;
use keel_config::{Problem, Problems, Reader, Settings, Source};
use keel_queue::{KeySettings, Keyring, WorkerSettings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The longest `KEEL_WEBHOOK_TIMEOUT`: a delivery holds a worker slot for that long.
const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(600);

/// Prometheus' default scrape interval: a snapshot per scrape of one Prometheus, fewer with more.
const DEFAULT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub settings: Settings,
    pub worker: WorkerSettings,
    /// `KEEL_SMTP_URL` (`smtps://user:pass@host:465`, or `smtp://…:587` upgraded by STARTTLS);
    /// unset means the file outbox.
    pub smtp_url: Option<keel_config::Secret>,
    /// `KEEL_MAIL_OUTBOX_DIR`, default `./data/outbox`.
    pub outbox_dir: PathBuf,
    /// `KEEL_SMTP_ALLOW_PLAINTEXT`: mail may go unencrypted to a server off this host that
    /// offers no STARTTLS (never the password). Default false.
    pub smtp_allow_plaintext: bool,
    /// `KEEL_MAIL_FROM`, default `keel@localhost`; its domain is the Message-IDs'.
    pub mail_from: Sender,
    /// `KEEL_WEBHOOK_SECRET`: signs `Keel-Signature`; defaults to `INTERNAL_API_SECRET`.
    pub webhook_secret: Option<keel_config::Secret>,
    /// `KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS`: non-public networks webhooks may reach anyway.
    pub webhook_allowed_nets: Vec<ipnet::IpNet>,
    /// `KEEL_WEBHOOK_TIMEOUT`, default 30 s: the whole of one delivery.
    pub webhook_timeout: Duration,
    /// `KEEL_WORKER_METRICS_BIND`, default `127.0.0.1:9091` (standalone worker only).
    pub metrics_bind: SocketAddr,
    /// `KEEL_METRICS_SNAPSHOT_INTERVAL`, default 15 s: the queue gauges (and keel-api's health
    /// queue section) come from at most one database snapshot per interval.
    pub metrics_snapshot_interval: Duration,
    /// `HEALTH_TIMEOUT_MS` for the listener's `/api/health` (standalone worker only; keel-api
    /// reads its own).
    pub health: keel_health::HealthConfig,
    pub telemetry_retention_days: u64,
    /// `KEEL_PUBLIC_URL`: the base of links in emails (default `http://` + `KEEL_BIND`). Read
    /// here because the worker writes the password-reset mail; keel-api reads it from here too.
    pub public_url: String,
    /// `KEEL_PASSWORD_RESET_TTL`: how long a reset link works (default 1h).
    pub reset_ttl: Duration,
    /// `KEEL_JOB_ENCRYPTION_KEY` and `KEEL_JOB_DECRYPTION_KEYS`, validated (required in
    /// production).
    pub job_keys: KeySettings,
    /// The keys sealed jobs are sealed and opened with: the configured ones, or after
    /// [`WorkerConfig::resolve_keyring`] the development key file's.
    pub keyring: Option<Arc<Keyring>>,
}

impl WorkerConfig {
    /// Reads the worker's own settings onto `r` (the shared settings are read by the caller).
    pub fn read(r: &mut Reader<'_>, settings: Settings) -> (WorkerConfig, Vec<Problem>) {
        let mut extra = Vec::new();
        let worker = match WorkerSettings::from_source(r.source()) {
            Ok(w) => w,
            Err(p) => {
                extra.extend(p.0);
                WorkerSettings::default()
            }
        };
        let smtp_url = r.raw("KEEL_SMTP_URL").map(keel_config::Secret::new);
        if let Some(u) = &smtp_url {
            if let Err(e) = crate::kinds::smtp::SmtpTarget::parse(u.expose()) {
                r.problem("KEEL_SMTP_URL", e);
            }
        }
        let outbox_dir = PathBuf::from(r.string("KEEL_MAIL_OUTBOX_DIR", "./data/outbox"));
        let smtp_allow_plaintext = r.bool("KEEL_SMTP_ALLOW_PLAINTEXT", false);
        let default_from = || Sender::parse("keel@localhost").unwrap_or_else(|e| unreachable!("{e}"));
        let mail_from = match Sender::parse(&r.string("KEEL_MAIL_FROM", "keel@localhost")) {
            Ok(s) => s,
            Err(e) => {
                r.problem("KEEL_MAIL_FROM", e);
                default_from()
            }
        };
        let webhook_secret =
            r.raw("KEEL_WEBHOOK_SECRET").map(keel_config::Secret::new).or(settings.internal_api_secret.clone());
        let nets_var = crate::kinds::ALLOWED_NETS_VAR;
        let webhook_allowed_nets = match crate::kinds::parse_allowed(&r.string(nets_var, "")) {
            Ok(n) => n,
            Err(e) => {
                r.problem(nets_var, e);
                Vec::new()
            }
        };
        let webhook_timeout = r.duration("KEEL_WEBHOOK_TIMEOUT", crate::kinds::DEFAULT_DELIVERY_TIMEOUT);
        if webhook_timeout.is_zero() || webhook_timeout > MAX_WEBHOOK_TIMEOUT {
            r.problem("KEEL_WEBHOOK_TIMEOUT", "must be longer than zero and at most 10m, like 30s");
        }
        let metrics_bind = r.parse(
            "KEEL_WORKER_METRICS_BIND",
            SocketAddr::from(([127, 0, 0, 1], 9091)),
            "an address like 127.0.0.1:9091",
        );
        let metrics_snapshot_interval = r.duration("KEEL_METRICS_SNAPSHOT_INTERVAL", DEFAULT_SNAPSHOT_INTERVAL);
        if metrics_snapshot_interval < Duration::from_secs(1) || metrics_snapshot_interval > Duration::from_secs(3600) {
            r.problem("KEEL_METRICS_SNAPSHOT_INTERVAL", "must be between 1s and 1h, like 15s");
        }
        let telemetry_retention_days = r.int_in("ROUTE_TELEMETRY_RETENTION_DAYS", 30, 1, 3650);
        let reset_ttl = r.duration("KEEL_PASSWORD_RESET_TTL", Duration::from_secs(3600));
        if reset_ttl < Duration::from_secs(60) {
            r.problem(
                "KEEL_PASSWORD_RESET_TTL",
                "must be at least 1m, like 30m or 1h: a shorter link expires in transit",
            );
        }
        let default_url = format!("http://{}", settings.bind);
        let public_url = r.string("KEEL_PUBLIC_URL", &default_url).trim_end_matches('/').to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            r.problem("KEEL_PUBLIC_URL", "must start with http:// or https://");
        }
        let job_keys = KeySettings::read(r, settings.is_production());
        let keyring = job_keys.keyring().and_then(Result::ok).map(Arc::new);
        let cfg = WorkerConfig {
            settings,
            worker,
            smtp_url,
            outbox_dir,
            smtp_allow_plaintext,
            mail_from,
            webhook_secret,
            webhook_allowed_nets,
            webhook_timeout,
            metrics_bind,
            metrics_snapshot_interval,
            health: keel_health::HealthConfig::default(),
            telemetry_retention_days,
            public_url,
            reset_ttl,
            job_keys,
            keyring,
        };
        (cfg, extra)
    }

    /// Makes sure a keyring is present: the configured one, or in development (no
    /// `KEEL_JOB_ENCRYPTION_KEY`, which production refuses at load) the key kept in
    /// [`keel_queue::seal::DEV_KEY_FILE`], created on first start. Logs where the key came
    /// from and its id, never the key.
    pub fn resolve_keyring(&mut self) -> anyhow::Result<Arc<Keyring>> {
        if let Some(k) = &self.keyring {
            return Ok(k.clone());
        }
        let path = std::path::Path::new(keel_queue::seal::DEV_KEY_FILE);
        let ring = Arc::new(self.job_keys.resolve(path).map_err(|e| anyhow::anyhow!("{e}"))?);
        tracing::info!(key_id = ring.current_id(), file = %path.display(),
            "job encryption: KEEL_JOB_ENCRYPTION_KEY is unset, using the development key file");
        self.keyring = Some(ring.clone());
        Ok(ring)
    }

    /// The standalone worker's whole configuration, every problem at once.
    pub fn load(source: &dyn Source) -> Result<WorkerConfig, Problems> {
        let mut r = Reader::new(source);
        let settings = Settings::read(&mut r);
        let (mut cfg, extra) = WorkerConfig::read(&mut r, settings);
        cfg.health = keel_health::HealthConfig::read(&mut r);
        let mut problems = r.into_problems();
        problems.extend(extra);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(Problems(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    fn load(vars: &[(&str, &str)]) -> Result<WorkerConfig, Problems> {
        WorkerConfig::load(&MapSource(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    #[test]
    fn metrics_listener_defaults_to_loopback_9091() {
        let c = load(&[]).unwrap();
        assert_eq!(c.metrics_bind, "127.0.0.1:9091".parse::<SocketAddr>().unwrap());
        assert_eq!(c.telemetry_retention_days, 30);
        // Port 0 is accepted: the kernel picks one, and the worker logs the bound address.
        assert_eq!(load(&[("KEEL_WORKER_METRICS_BIND", "127.0.0.1:0")]).unwrap().metrics_bind.port(), 0);
        assert_eq!(load(&[("ROUTE_TELEMETRY_RETENTION_DAYS", "7")]).unwrap().telemetry_retention_days, 7);
        let p = load(&[("KEEL_WORKER_METRICS_BIND", "localhost")]).unwrap_err();
        assert!(p.to_string().contains("KEEL_WORKER_METRICS_BIND"), "{p}");
        assert_eq!(c.metrics_snapshot_interval, Duration::from_secs(15));
        assert_eq!(load(&[("KEEL_METRICS_SNAPSHOT_INTERVAL", "1m")]).unwrap().metrics_snapshot_interval.as_secs(), 60);
        for bad in ["0s", "2h", "soon"] {
            let p = load(&[("KEEL_METRICS_SNAPSHOT_INTERVAL", bad)]).unwrap_err();
            assert!(p.to_string().contains("KEEL_METRICS_SNAPSHOT_INTERVAL"), "{bad}: {p}");
        }
    }

    #[test]
    fn mail_and_webhook_settings_are_validated_naming_the_variable() {
        let c = load(&[]).unwrap();
        assert!(!c.smtp_allow_plaintext && c.webhook_allowed_nets.is_empty());
        assert_eq!(c.webhook_timeout, Duration::from_secs(30));
        let c = load(&[
            ("KEEL_SMTP_ALLOW_PLAINTEXT", "true"),
            ("KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS", "127.0.0.1/32, 10.0.0.0/8"),
            ("KEEL_WEBHOOK_TIMEOUT", "250ms"),
            ("KEEL_MAIL_FROM", "Équipe Keel <keel@example.com>"),
        ])
        .unwrap();
        assert!(c.smtp_allow_plaintext);
        assert_eq!(c.webhook_allowed_nets.len(), 2);
        assert_eq!(c.webhook_timeout, Duration::from_millis(250));
        assert_eq!(c.mail_from.message_id("x"), "<x@example.com>");
        let p = load(&[
            ("KEEL_SMTP_ALLOW_PLAINTEXT", "sometimes"),
            ("KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS", "10.0.0.0/8,10.0.0.0/40"),
            ("KEEL_WEBHOOK_TIMEOUT", "0s"),
            ("KEEL_MAIL_FROM", "not an address"),
        ])
        .unwrap_err()
        .to_string();
        for var in
            ["KEEL_SMTP_ALLOW_PLAINTEXT", "KEEL_WEBHOOK_ALLOWED_PRIVATE_NETS", "KEEL_WEBHOOK_TIMEOUT", "KEEL_MAIL_FROM"]
        {
            assert!(p.contains(var), "{var} named: {p}");
        }
        assert!(p.contains("10.0.0.0/40") && !p.contains("\"10.0.0.0/8\""), "{p}");
    }
}
