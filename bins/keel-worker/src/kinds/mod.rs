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

/// Each built-in kind's queue, attempts and timeout. One table, read by [`builtin_registry`]
/// and by anything that enqueues these kinds by name without running a worker (`keel-ops
/// queue enqueue`), so a hand-made `webhook.deliver` lands on `webhooks` with 10 attempts like
/// one from the API. `None` for kinds Keel does not define.
pub fn builtin_options(kind: &str) -> Option<KindOptions> {
    Some(match kind {
        "email.send" => KindOptions::default().max_attempts(8),
        "webhook.deliver" => KindOptions::default()
            .queue("webhooks")
            .max_attempts(10)
            .timeout(webhook::DELIVERY_TIMEOUT + Duration::from_secs(5)),
        "campaign.batch" => KindOptions::default().timeout(Duration::from_secs(1800)),
        "demo.sleep" => KindOptions::default(),
        "demo.fail" => KindOptions::default().max_attempts(3),
        _ => return None,
    })
}

fn options(kind: &str) -> KindOptions {
    builtin_options(kind).unwrap_or_default()
}

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
    r.register_json("email.send", options("email.send"), move |payload, _ctx| {
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
    r.register_json("webhook.deliver", options("webhook.deliver"), move |payload, _ctx| {
        let (client, secret) = (client.clone(), secret.clone());
        async move { webhook::deliver(&client, secret.as_ref(), payload).await }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(db) = db {
        let m = mailer.clone();
        r.register_json("campaign.batch", options("campaign.batch"), move |payload, ctx| {
            let (db, m) = (db.clone(), m.clone());
            async move { campaign::run(&db, m.as_ref(), payload, ctx).await }
        })
        .map_err(|e| anyhow::anyhow!(e))?;
    }
    r.register_json("demo.sleep", options("demo.sleep"), demo::sleep).map_err(|e| anyhow::anyhow!(e))?;
    r.register_json("demo.fail", options("demo.fail"), |payload, _ctx| demo::fail(payload))
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(r)
}
