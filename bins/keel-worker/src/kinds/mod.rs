//! The built-in job kinds: `email.send`, `auth.password_reset`, `webhook.deliver`,
//! `campaign.batch`, `demo.sleep` and `demo.fail`.

mod campaign;
mod compose;
mod demo;
mod destination;
mod mail;
mod password_reset;
pub(crate) mod smtp;
pub(crate) mod webhook;

pub use compose::Sender;
pub(crate) use destination::{parse_allowed, ALLOWED_NETS_VAR};
pub use mail::{FileOutbox, MailError, MailFuture, Mailer, Message};
pub use password_reset::PasswordResetRequest;
pub use smtp::SmtpMailer;
pub(crate) use webhook::DEFAULT_DELIVERY_TIMEOUT;
pub use webhook::{signature as webhook_signature, DELIVERY_ID_HEADER, SIGNATURE_HEADER};

use crate::WorkerConfig;
use keel_queue::{JobArgs, KindOptions, Registry};
use std::sync::Arc;
use std::time::Duration;

/// Each built-in kind's queue, attempts and timeout. One table, read by [`builtin_registry`]
/// and by anything that enqueues these kinds by name without running a worker (`keel-ops
/// queue enqueue`), so a hand-made `webhook.deliver` lands on `webhooks` with 10 attempts like
/// one from the API. `None` for kinds Keel does not define.
pub fn builtin_options(kind: &str) -> Option<KindOptions> {
    Some(match kind {
        // Every email carries personal data (address, often names in the text): sealed whole.
        "email.send" => KindOptions::default().max_attempts(8).sealed(),
        "auth.password_reset" => PasswordResetRequest::options(),
        "webhook.deliver" => KindOptions::default()
            .queue("webhooks")
            .max_attempts(10)
            .timeout(webhook::DEFAULT_DELIVERY_TIMEOUT + WEBHOOK_JOB_MARGIN),
        "campaign.batch" => KindOptions::default().timeout(Duration::from_secs(1800)),
        "demo.sleep" => KindOptions::default(),
        "demo.fail" => KindOptions::default().max_attempts(3),
        _ => return None,
    })
}

/// A webhook job's timeout beyond its delivery's, so the delivery's own (clearer) timeout
/// answers first.
const WEBHOOK_JOB_MARGIN: Duration = Duration::from_secs(5);

fn options(kind: &str) -> KindOptions {
    builtin_options(kind).unwrap_or_default()
}

/// The registry every Keel worker runs (and keel-api uses for inline dispatch).
/// `campaign.batch` (its totals) and `auth.password_reset` (accounts and reset tokens) need the
/// database and are registered only when one is given.
pub fn builtin_registry(cfg: &WorkerConfig, db: Option<keel_storage::Db>) -> anyhow::Result<Registry> {
    let mailer: Arc<dyn Mailer> = match &cfg.smtp_url {
        Some(url) => Arc::new(
            SmtpMailer::new(url.expose(), cfg.mail_from.clone(), cfg.smtp_allow_plaintext)
                .map_err(|e| anyhow::anyhow!("KEEL_SMTP_URL: {e}"))?,
        ),
        None => Arc::new(FileOutbox::new(cfg.outbox_dir.clone(), cfg.mail_from.clone())),
    };
    let mut r = Registry::new();
    let m = mailer.clone();
    r.register_json("email.send", options("email.send"), move |payload, ctx| {
        let m = m.clone();
        async move { mail::send_job(m.as_ref(), payload, ctx).await }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    let hooks = Arc::new(
        webhook::Webhooks::new(
            cfg.webhook_secret.clone(),
            destination::Destinations::new(cfg.webhook_allowed_nets.clone()),
            cfg.webhook_timeout,
        )
        .map_err(|e| anyhow::anyhow!(e))?,
    );
    let webhook_options = options("webhook.deliver").timeout(cfg.webhook_timeout + WEBHOOK_JOB_MARGIN);
    r.register_json("webhook.deliver", webhook_options, move |payload, ctx| {
        let hooks = hooks.clone();
        async move { hooks.deliver(&ctx.job.id.to_string(), payload).await }
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(db) = db {
        let resets = Arc::new(password_reset::PasswordResets {
            tenancy: keel_tenancy::Tenancy::new(db.clone()),
            mailer: mailer.clone(),
            public_url: cfg.public_url.clone(),
            ttl: cfg.reset_ttl,
        });
        r.register(move |req: PasswordResetRequest, ctx| {
            let resets = resets.clone();
            async move { resets.run(req, ctx).await }
        })
        .map_err(|e| anyhow::anyhow!(e))?;
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
