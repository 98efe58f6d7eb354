//! `email.send`: the `Mailer` trait, the file outbox for development, and the job handler.
//! Recipients are masked in every log line.

use keel_ids::Email;
use keel_queue::JobError;
use serde::Deserialize;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub to: Email,
    pub subject: String,
    pub text: String,
}

#[derive(Debug)]
pub enum MailError {
    /// Worth retrying (connection refused, 4xx from the server).
    Transient(String),
    /// Never going to work (5xx: no such mailbox, rejected).
    Permanent(String),
}

impl std::error::Error for MailError {}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(m) => write!(f, "temporary mail failure: {}", keel_ids::mask_email(m)),
            Self::Permanent(m) => write!(f, "permanent mail failure: {}", keel_ids::mask_email(m)),
        }
    }
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

pub trait Mailer: Send + Sync + 'static {
    fn send<'a>(&'a self, msg: &'a Message) -> MailFuture<'a>;
}

/// Writes each message as an `.eml` file (development default: `./data/outbox`).
pub struct FileOutbox {
    dir: PathBuf,
    from: String,
}

impl FileOutbox {
    pub fn new(dir: PathBuf, from: &str) -> Self {
        Self { dir, from: from.to_owned() }
    }
}

impl Mailer for FileOutbox {
    fn send<'a>(&'a self, msg: &'a Message) -> MailFuture<'a> {
        Box::pin(async move {
            tokio::fs::create_dir_all(&self.dir).await.map_err(|e| MailError::Transient(e.to_string()))?;
            let id = uuid::Uuid::now_v7();
            let body = format!(
                "From: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{id}@keel>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
                self.from,
                msg.to.as_str(),
                msg.subject.replace(['\r', '\n'], " "),
                msg.text
            );
            // Written under a temporary name and renamed, so a reader never sees half a message.
            let tmp = self.dir.join(format!(".{id}.tmp"));
            let dest = self.dir.join(format!("{id}.eml"));
            tokio::fs::write(&tmp, body).await.map_err(|e| MailError::Transient(e.to_string()))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(|e| MailError::Transient(e.to_string()))
        })
    }
}

pub(crate) async fn send_job(mailer: &dyn Mailer, payload: serde_json::Value) -> Result<(), JobError> {
    let msg: Message = serde_json::from_value(payload).map_err(|e| {
        JobError::unprocessable(format!("email.send payload: {}", keel_ids::mask_email(&e.to_string())))
    })?;
    if msg.subject.len() > 998 {
        return Err(JobError::unprocessable("email.send subject is longer than 998 characters"));
    }
    match mailer.send(&msg).await {
        Ok(()) => {
            tracing::info!(event = "email_sent", to = %msg.to, "email sent");
            Ok(())
        }
        Err(e @ MailError::Permanent(_)) => Err(JobError::permanent(e.to_string())),
        Err(e) => Err(JobError::retryable(e.to_string())),
    }
}
