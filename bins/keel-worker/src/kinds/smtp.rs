//! A minimal SMTP submission client (`KEEL_SMTP_URL=smtp://user:pass@host:587`): EHLO, AUTH
//! PLAIN, MAIL, RCPT, DATA. No STARTTLS: point it at a local relay or a provider endpoint on a
//! private network. 4xx replies are temporary (the job retries), 5xx permanent.

use super::mail::{MailError, MailFuture, Mailer, Message};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Bounds every step of a conversation, so a stuck server cannot hold a worker slot.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub(crate) struct SmtpTarget {
    host: String,
    port: u16,
    user: Option<String>,
    pass: Option<String>,
}

impl SmtpTarget {
    /// Parses `smtp://[user[:pass]@]host[:port]`; messages never repeat the password.
    pub(crate) fn parse(url: &str) -> Result<SmtpTarget, String> {
        let rest =
            url.strip_prefix("smtp://").ok_or("must start with smtp:// (e.g. smtp://user:pass@mail.internal:587)")?;
        let rest = rest.trim_end_matches('/');
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| "has a port that is not a number from 1 to 65535")?),
            None => (hostport, 587),
        };
        if host.is_empty() {
            return Err("names no host".into());
        }
        let (user, pass) = match creds {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(c)), None),
            },
            None => (None, None),
        };
        Ok(SmtpTarget { host: host.to_owned(), port, user, pass })
    }
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n =
            (chunk[0] as u32) << 16 | (*chunk.get(1).unwrap_or(&0) as u32) << 8 | *chunk.get(2).unwrap_or(&0) as u32;
        for (i, shift) in [18, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub struct SmtpMailer {
    target: SmtpTarget,
    from: String,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, String> {
        Ok(SmtpMailer { target: SmtpTarget::parse(url)?, from: from.to_owned() })
    }

    async fn converse(&self, msg: &Message) -> Result<(), MailError> {
        let t = &self.target;
        let stream = step(TcpStream::connect((t.host.as_str(), t.port)))
            .await?
            .map_err(|e| MailError::Transient(format!("cannot connect to {}:{}: {e}", t.host, t.port)))?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        expect(&mut r, 220).await?;
        command(&mut w, &mut r, "EHLO keel", 250).await?;
        if let (Some(u), Some(p)) = (&t.user, &t.pass) {
            let token = base64(format!("\0{u}\0{p}").as_bytes());
            command(&mut w, &mut r, &format!("AUTH PLAIN {token}"), 235).await?;
        }
        command(&mut w, &mut r, &format!("MAIL FROM:<{}>", self.from), 250).await?;
        command(&mut w, &mut r, &format!("RCPT TO:<{}>", msg.to.as_str()), 250).await?;
        command(&mut w, &mut r, "DATA", 354).await?;
        let mut data = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
            self.from,
            msg.to.as_str(),
            msg.subject.replace(['\r', '\n'], " ")
        );
        for line in msg.text.lines() {
            // Dot-stuffing: a line starting with '.' would otherwise end the message early.
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push('.');
        command(&mut w, &mut r, &data, 250).await?;
        let _ = command(&mut w, &mut r, "QUIT", 221).await;
        Ok(())
    }
}

async fn step<T>(f: impl std::future::Future<Output = T>) -> Result<T, MailError> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| MailError::Transient("the SMTP server did not answer within 30 s".into()))
}

async fn expect<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, code: u16) -> Result<(), MailError> {
    loop {
        let mut line = String::new();
        let n = step(r.read_line(&mut line)).await?.map_err(|e| MailError::Transient(e.to_string()))?;
        if n == 0 {
            return Err(MailError::Transient("the SMTP server closed the connection".into()));
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return match got {
            c if c == code => Ok(()),
            400..=499 => Err(MailError::Transient(line.trim().to_owned())),
            _ => Err(MailError::Permanent(line.trim().to_owned())),
        };
    }
}

async fn command<W: tokio::io::AsyncWrite + Unpin, R: tokio::io::AsyncBufRead + Unpin>(
    w: &mut W,
    r: &mut R,
    line: &str,
    code: u16,
) -> Result<(), MailError> {
    step(w.write_all(format!("{line}\r\n").as_bytes())).await?.map_err(|e| MailError::Transient(e.to_string()))?;
    expect(r, code).await
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, msg: &'a Message) -> MailFuture<'a> {
        Box::pin(self.converse(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_encodes() {
        let t = SmtpTarget::parse("smtp://me%40x.com:p%3Ass@mail.internal:2525").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("mail.internal", 2525));
        assert_eq!(t.user.as_deref(), Some("me@x.com"));
        assert_eq!(t.pass.as_deref(), Some("p:ss"));
        assert_eq!(SmtpTarget::parse("smtp://relay").unwrap().port, 587);
        assert!(SmtpTarget::parse("http://x").is_err());
        assert!(SmtpTarget::parse("smtp://h:99999").is_err());
        assert_eq!(base64(b"\0u\0p"), "AHUAcA==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
