//! `email.send`: the `Mailer` trait, the file outbox for development, and the job handler.
//! Recipients are masked in every log line. Every message carries a delivery id (the job id,
//! or the job id and the recipient's index in a campaign) that becomes its `Message-ID` and
//! the outbox file's name, so a redelivery replaces rather than duplicates.

use super::compose::Sender;
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
    /// Sends `msg` as delivery `id`: the same id for every attempt of the same message.
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> MailFuture<'a>;
}

/// Writes each message as `<delivery id>.eml` (development default: `./data/outbox`).
pub struct FileOutbox {
    dir: PathBuf,
    from: Sender,
}

impl FileOutbox {
    pub fn new(dir: PathBuf, from: Sender) -> Self {
        Self { dir, from }
    }
}

/// A delivery id is made here from a job id (a UUID) and a number, but the outbox never trusts
/// that: anything but `[A-Za-z0-9.-]` would be a path or header hazard.
fn safe_id(id: &str) -> Result<&str, MailError> {
    if !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        Ok(id)
    } else {
        Err(MailError::Permanent(format!("delivery id {id:?} is not [A-Za-z0-9.-]")))
    }
}

impl Mailer for FileOutbox {
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> MailFuture<'a> {
        Box::pin(async move {
            let id = safe_id(id)?;
            let bytes = self.from.compose(id, msg)?.formatted();
            tokio::fs::create_dir_all(&self.dir).await.map_err(|e| MailError::Transient(e.to_string()))?;
            // Written under a temporary name and renamed, so a reader never sees half a message,
            // and named by the delivery id, so a redelivery replaces the file.
            let tmp = self.dir.join(format!(".{id}.{}.tmp", uuid::Uuid::now_v7()));
            let dest = self.dir.join(format!("{id}.eml"));
            tokio::fs::write(&tmp, bytes).await.map_err(|e| MailError::Transient(e.to_string()))?;
            tokio::fs::rename(&tmp, &dest).await.map_err(|e| MailError::Transient(e.to_string()))
        })
    }
}

pub(crate) async fn send_job(
    mailer: &dyn Mailer,
    payload: serde_json::Value,
    ctx: keel_queue::JobContext,
) -> Result<(), JobError> {
    let msg: Message = serde_json::from_value(payload).map_err(|e| {
        JobError::unprocessable(format!("email.send payload: {}", keel_ids::mask_email(&e.to_string())))
    })?;
    if msg.subject.len() > 998 {
        return Err(JobError::unprocessable("email.send subject is longer than 998 characters"));
    }
    match mailer.send(&ctx.job.id.to_string(), &msg).await {
        Ok(()) => {
            tracing::info!(event = "email_sent", to = %msg.to, "email sent");
            Ok(())
        }
        Err(e @ MailError::Permanent(_)) => Err(JobError::permanent(e.to_string())),
        Err(e) => Err(JobError::retryable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Message {
        Message { to: Email::parse("jane@example.com").unwrap(), subject: subject.into(), text: "Hello".into() }
    }

    #[tokio::test]
    async fn the_outbox_names_each_file_by_its_delivery_id_so_a_redelivery_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = FileOutbox::new(dir.path().to_owned(), Sender::parse("keel@example.com").unwrap());
        let id = "0197a5c8-0000-7000-8000-000000000001";
        outbox.send(id, &message("first")).await.unwrap();
        outbox.send(id, &message("again")).await.unwrap();
        outbox.send("0197a5c8-0000-7000-8000-000000000002.3", &message("other")).await.unwrap();
        let mut names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, [format!("{id}.eml"), "0197a5c8-0000-7000-8000-000000000002.3.eml".to_owned()]);
        let text = std::fs::read_to_string(dir.path().join(format!("{id}.eml"))).unwrap();
        assert!(text.contains(&format!("Message-ID: <{id}@example.com>\r\n")), "{text}");
        assert!(text.contains("Subject: again\r\n") && text.contains("\r\nDate: "), "{text}");
        for bad in ["../x", "a/b", "", "x y"] {
            assert!(matches!(outbox.send(bad, &message("s")).await, Err(MailError::Permanent(_))), "{bad:?}");
        }
    }
}
