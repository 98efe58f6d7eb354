//! The worker's configuration: the shared settings, the queue's sizing and the built-in kinds'
//! settings, all read and reported together.

use keel_config::{Problem, Problems, Reader, Settings, Source};
use keel_queue::WorkerSettings;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub settings: Settings,
    pub worker: WorkerSettings,
    /// `KEEL_SMTP_URL` (`smtps://user:pass@host:465`, or `smtp://…:587` upgraded by STARTTLS);
    /// unset means the file outbox.
    pub smtp_url: Option<keel_config::Secret>,
    /// `KEEL_MAIL_OUTBOX_DIR`, default `./data/outbox`.
    pub outbox_dir: PathBuf,
    /// `KEEL_MAIL_FROM`, default `keel@localhost`.
    pub mail_from: String,
    /// `KEEL_WEBHOOK_SECRET`: signs `Keel-Signature`; defaults to `INTERNAL_API_SECRET`.
    pub webhook_secret: Option<keel_config::Secret>,
    /// `KEEL_WORKER_METRICS_BIND`, default `127.0.0.1:9091` (standalone worker only).
    pub metrics_bind: SocketAddr,
    pub telemetry_retention_days: u64,
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
        let mail_from = r.string("KEEL_MAIL_FROM", "keel@localhost");
        if keel_ids::Email::parse(&mail_from).is_err() && mail_from != "keel@localhost" {
            r.problem("KEEL_MAIL_FROM", "must be an email address like keel@example.com");
        }
        let webhook_secret =
            r.raw("KEEL_WEBHOOK_SECRET").map(keel_config::Secret::new).or(settings.internal_api_secret.clone());
        let metrics_bind = r.parse(
            "KEEL_WORKER_METRICS_BIND",
            SocketAddr::from(([127, 0, 0, 1], 9091)),
            "an address like 127.0.0.1:9091",
        );
        let telemetry_retention_days = r.int_in("ROUTE_TELEMETRY_RETENTION_DAYS", 30, 1, 3650);
        let cfg = WorkerConfig {
            settings,
            worker,
            smtp_url,
            outbox_dir,
            mail_from,
            webhook_secret,
            metrics_bind,
            telemetry_retention_days,
        };
        (cfg, extra)
    }

    /// The standalone worker's whole configuration, every problem at once.
    pub fn load(source: &dyn Source) -> Result<WorkerConfig, Problems> {
        let mut r = Reader::new(source);
        let settings = Settings::read(&mut r);
        let (cfg, extra) = WorkerConfig::read(&mut r, settings);
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
    }
}
