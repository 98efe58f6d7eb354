//! The built-in job kinds: `email.send`, `webhook.deliver`, `demo.sleep` and `demo.fail`.

mod campaign;
mod demo;
mod mail;
pub(crate) mod smtp;
pub(crate) mod webhook;

pub use mail::{FileOutbox, MailError, MailFuture, Mailer, Message};
pub use smtp::SmtpMailer;
pub use webhook::{signature as webhook_signature, SIGNATURE_HEADER};

use crate::WorkerConfig;
use keel_queue::{KindOptions, Registry};
use std::sync::Arc;
use std::time::Duration;

/// The registry every Keel worker runs (and keel-api uses for inline dispatch). `campaign.batch`
/// needs the database for its totals and is registered only when one is given.
pub fn builtin_registry(cfg: &WorkerConfig, db: Option<keel_storage::Db>) -> anyhow::Result<Registry> {
    let mailer: Arc<dyn Mailer> = match &cfg.smtp_url {
        Some(url) => {
            Arc::new(SmtpMailer::new(url.expose(), &cfg.mail_from).map_err(|e| anyhow::anyhow!("KEEL_SMTP_URL: {e}"))?)
        }
        None => Arc::new(FileOutbox::new(cfg.outbox_dir.clone(), &cfg.mail_from)),
    };
    let mut r = Registry::new();
    let m = mailer.clone();
    r.register_json("email.send", KindOptions::default().max_attempts(8), move |payload, _ctx| {
        let m = m.clone();
        async move { mail::send_job(m.as_ref(), payload).await }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let secret = cfg.webhook_secret.clone();
    // One endpoint's failure never blocks the others: each delivery is its own job, on its own
    // queue, bounded by the per-delivery timeout.
    let client = reqwest::Client::builder()
        .timeout(webhook::DELIVERY_TIMEOUT)
        .build()
        .map_err(|e| anyhow::anyhow!("http client: {e}"))?;
    r.register_json(
        "webhook.deliver",
        KindOptions::default()
            .queue("webhooks")
            .max_attempts(10)
            .timeout(webhook::DELIVERY_TIMEOUT + Duration::from_secs(5)),
        move |payload, _ctx| {
            let (client, secret) = (client.clone(), secret.clone());
            async move { webhook::deliver(&client, secret.as_ref(), payload).await }
        },
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(db) = db {
        let m = mailer.clone();
        r.register_json(
            "campaign.batch",
            KindOptions::default().timeout(Duration::from_secs(1800)),
            move |payload, ctx| {
                let (db, m) = (db.clone(), m.clone());
                async move { campaign::run(&db, m.as_ref(), payload, ctx).await }
            },
        )
        .map_err(|e| anyhow::anyhow!(e))?;
    }
    r.register_json("demo.sleep", KindOptions::default(), demo::sleep).map_err(|e| anyhow::anyhow!(e))?;
    r.register_json("demo.fail", KindOptions::default().max_attempts(3), |payload, _ctx| demo::fail(payload))
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(r)
}
