//! One way to turn a job's message into RFC 5322 bytes, shared by the SMTP mailer and the
//! file outbox: lettre's builder writes `Date`, encodes non-ASCII headers (RFC 2047), picks a
//! body encoding that keeps lines within the limit (RFC 5322's 998 octets), and takes a
//! `Message-ID` derived from the delivery id, so a receiver can drop the duplicates that
//! at-least-once delivery allows after a crash.

use super::mail::{MailError, Message};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;

/// The sender: `KEEL_MAIL_FROM` as a mailbox (`keel@example.com` or
/// `Keel Billing <billing@example.com>`), and the domain its Message-IDs use.
#[derive(Debug, Clone)]
pub struct Sender {
    mailbox: Mailbox,
}

impl Sender {
    /// Parses `KEEL_MAIL_FROM`; the message names the accepted forms.
    pub fn parse(from: &str) -> Result<Sender, String> {
        let mailbox: Mailbox = from.trim().parse().map_err(|_| {
            "must be an email address like keel@example.com, or a name and address like \
             \"Keel Billing <billing@example.com>\""
                .to_owned()
        })?;
        Ok(Sender { mailbox })
    }

    /// `<ID@DOMAIN>`, with the sender's domain (RFC 5322 asks for a domain the sender owns).
    pub(crate) fn message_id(&self, id: &str) -> String {
        format!("<{id}@{}>", self.mailbox.email.domain())
    }

    /// The whole message for delivery `id` (the job id, or the job id and recipient index for
    /// a campaign), ready for DATA or a file.
    pub(crate) fn compose(&self, id: &str, msg: &Message) -> Result<lettre::Message, MailError> {
        let to: lettre::Address =
            msg.to.as_str().parse().map_err(|e| {
                MailError::Permanent(format!("recipient {} is not an address SMTP accepts: {e}", msg.to))
            })?;
        lettre::Message::builder()
            .from(self.mailbox.clone())
            .to(Mailbox::new(None, to))
            // A header never spans lines by our hand: CR and LF in a subject would inject headers.
            .subject(msg.subject.replace(['\r', '\n'], " "))
            .message_id(Some(self.message_id(id)))
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|e| MailError::Permanent(format!("cannot build the message: {e}")))
    }
}
