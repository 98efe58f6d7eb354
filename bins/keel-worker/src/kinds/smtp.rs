//! A minimal SMTP submission client (`KEEL_SMTP_URL`): EHLO, STARTTLS, AUTH PLAIN, MAIL, RCPT,
//! DATA. `smtps://user:pass@host:465` speaks TLS from the first byte; `smtp://user:pass@host:587`
//! upgrades with STARTTLS whenever the server's EHLO offers it, then says EHLO again over TLS.
//! TLS is rustls (ring) with Mozilla's roots, and the certificate is always checked against the
//! URL's host. The password is never sent in clear text: without TLS, AUTH is refused unless the
//! connection's peer is a loopback address (a relay on this host). 4xx replies are temporary (the
//! job retries), 5xx permanent; TLS failures are temporary, since the message is fine and the
//! server or its certificate can be fixed while the job waits.

use super::mail::{MailError, MailFuture, Mailer, Message};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// Bounds every step of a conversation, so a stuck server cannot hold a worker slot.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub(crate) struct SmtpTarget {
    host: String,
    port: u16,
    user: Option<String>,
    pass: Option<String>,
    /// `smtps://`: TLS from the first byte, no STARTTLS.
    implicit_tls: bool,
}

/// Never prints the password (secrets stay out of logs and panics alike).
impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "<redacted>"))
            .field("implicit_tls", &self.implicit_tls)
            .finish()
    }
}

impl SmtpTarget {
    /// Parses `smtp[s]://[user[:pass]@]host[:port]`; messages never repeat the password.
    pub(crate) fn parse(url: &str) -> Result<SmtpTarget, String> {
        let (rest, implicit_tls, default_port) = if let Some(r) = url.strip_prefix("smtps://") {
            (r, true, 465)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            (r, false, 587)
        } else {
            return Err("must start with smtps:// (TLS, e.g. smtps://user:pass@smtp.example.com:465) or smtp:// \
                        (STARTTLS when offered, e.g. smtp://user:pass@smtp.example.com:587)"
                .into());
        };
        let rest = rest.trim_end_matches('/');
        let (creds, hostport) = match rest.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, rest),
        };
        let bad_port = "has a port that is not a number from 1 to 65535";
        // An IPv6 literal is bracketed ([::1]:25), so its colons are not the port separator.
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            match v6.split_once(']') {
                Some((h, "")) => (h, default_port),
                Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()).ok_or(bad_port)?),
                None => return Err("has an IPv6 address without its closing ]".into()),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad_port)?),
                None => (hostport, default_port),
            }
        };
        if host.is_empty() {
            return Err("names no host".into());
        }
        // Checked here so `keel-ops config check` reports it, not the first email.
        ServerName::try_from(host).map_err(|_| "has a host that is not a valid DNS name or IP address")?;
        let (user, pass) = match creds {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(c)), None),
            },
            None => (None, None),
        };
        Ok(SmtpTarget { host: host.to_owned(), port, user, pass, implicit_tls })
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
    /// Built once: the root store is parsed at start, not per message.
    tls: TlsConnector,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, String> {
        Self::with_extra_roots(url, from, Vec::new())
    }

    /// `new`, also trusting `extra_roots` beside Mozilla's: the tests' own CA. Crate-internal so
    /// production can never be configured to trust anything else.
    pub(crate) fn with_extra_roots(
        url: &str,
        from: &str,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<SmtpMailer, String> {
        let target = SmtpTarget::parse(url)?;
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for cert in extra_roots {
            roots.add(cert).map_err(|e| format!("cannot trust an extra root certificate: {e}"))?;
        }
        // The provider is named rather than taken from the process default: with none installed
        // rustls would panic, and Keel's TLS is ring throughout.
        let config =
            ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("cannot set up TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(SmtpMailer { target, from: from.to_owned(), tls: TlsConnector::from(Arc::new(config)) })
    }

    async fn converse(&self, msg: &Message) -> Result<(), MailError> {
        let t = &self.target;
        let tcp = step(TcpStream::connect((t.host.as_str(), t.port)))
            .await?
            .map_err(|e| MailError::Transient(format!("cannot connect to {}:{}: {e}", t.host, t.port)))?;
        let peer = tcp.peer_addr().map_err(|e| MailError::Transient(e.to_string()))?.ip();
        if t.implicit_tls {
            let mut s = BufReader::new(self.handshake(tcp).await?);
            expect(&mut s, 220).await?;
            command(&mut s, "EHLO keel", 250).await?;
            return self.deliver(&mut s, msg, true, peer).await;
        }
        let mut s = BufReader::new(tcp);
        expect(&mut s, 220).await?;
        let ehlo = command(&mut s, "EHLO keel", 250).await?;
        if !offers_starttls(&ehlo) {
            return self.deliver(&mut s, msg, false, peer).await;
        }
        command(&mut s, "STARTTLS", 220).await?;
        // Anything the server sent after its 220 arrived before TLS and could be injected by a
        // man in the middle; a real server waits for the handshake.
        if !s.buffer().is_empty() {
            return Err(MailError::Transient(format!(
                "{}:{} sent data after its STARTTLS reply, before TLS; refusing to continue",
                t.host, t.port
            )));
        }
        let mut s = BufReader::new(self.handshake(s.into_inner()).await?);
        // RFC 3207: forget what the plain-text EHLO said and ask again over TLS.
        command(&mut s, "EHLO keel", 250).await?;
        self.deliver(&mut s, msg, true, peer).await
    }

    async fn handshake(&self, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MailError> {
        let t = &self.target;
        // Validated by `SmtpTarget::parse`; an error here would still only fail this message.
        let name = ServerName::try_from(t.host.clone())
            .map_err(|_| MailError::Permanent(format!("KEEL_SMTP_URL: {} is not a valid host name", t.host)))?;
        step(self.tls.connect(name, tcp)).await?.map_err(|e| {
            MailError::Transient(format!(
                "TLS with {}:{} failed: {e} (the server's certificate must chain to a Mozilla root and name {})",
                t.host, t.port, t.host
            ))
        })
    }

    /// AUTH, MAIL, RCPT, DATA, QUIT; `encrypted` says whether `s` is TLS, `peer` where it goes.
    async fn deliver<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        s: &mut BufReader<S>,
        msg: &Message,
        encrypted: bool,
        peer: IpAddr,
    ) -> Result<(), MailError> {
        let t = &self.target;
        if let (Some(u), Some(p)) = (&t.user, &t.pass) {
            if !auth_allowed(encrypted, peer) {
                let _ = command(s, "QUIT", 221).await;
                return Err(clear_auth_refused(t));
            }
            let token = base64(format!("\0{u}\0{p}").as_bytes());
            command(s, &format!("AUTH PLAIN {token}"), 235).await?;
        }
        command(s, &format!("MAIL FROM:<{}>", self.from), 250).await?;
        command(s, &format!("RCPT TO:<{}>", msg.to.as_str()), 250).await?;
        command(s, "DATA", 354).await?;
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
        command(s, &data, 250).await?;
        let _ = command(s, "QUIT", 221).await;
        Ok(())
    }
}

/// Temporary: the message is fine, and the job can wait for the server or the URL to be fixed.
fn clear_auth_refused(t: &SmtpTarget) -> MailError {
    MailError::Transient(format!(
        "KEEL_SMTP_URL: {}:{} does not offer STARTTLS, and the password is never sent in clear text over \
         a network; use smtps://...:465 if the provider offers TLS on connect, enable STARTTLS on the \
         server, or point KEEL_SMTP_URL at a relay on this host (loopback)",
        t.host, t.port
    ))
}

/// Whether AUTH may go out: always over TLS; without it only when the peer is this host, so
/// the credentials never cross a network in clear. Decided on the connected address, not the
/// name, since that is where the bytes actually go.
fn auth_allowed(encrypted: bool, peer: IpAddr) -> bool {
    encrypted || peer.to_canonical().is_loopback()
}

/// Whether an EHLO reply (its lines after the code) lists the STARTTLS extension.
fn offers_starttls(ehlo: &[String]) -> bool {
    ehlo.iter().any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS")))
}

async fn step<T>(f: impl std::future::Future<Output = T>) -> Result<T, MailError> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| MailError::Transient("the SMTP server did not answer within 30 s".into()))
}

/// Reads one (possibly multi-line) reply and returns its lines' text after the code.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, code: u16) -> Result<Vec<String>, MailError> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = step(r.read_line(&mut line)).await?.map_err(|e| MailError::Transient(e.to_string()))?;
        if n == 0 {
            return Err(MailError::Transient("the SMTP server closed the connection".into()));
        }
        let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        lines.push(line.get(4..).unwrap_or("").trim().to_owned());
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return match got {
            c if c == code => Ok(lines),
            400..=499 => Err(MailError::Transient(line.trim().to_owned())),
            _ => Err(MailError::Permanent(line.trim().to_owned())),
        };
    }
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufReader<S>,
    line: &str,
    code: u16,
) -> Result<Vec<String>, MailError> {
    let w = s.get_mut();
    step(w.write_all(format!("{line}\r\n").as_bytes())).await?.map_err(|e| MailError::Transient(e.to_string()))?;
    // TLS streams hold written records until flushed.
    step(w.flush()).await?.map_err(|e| MailError::Transient(e.to_string()))?;
    expect(s, code).await
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, msg: &'a Message) -> MailFuture<'a> {
        Box::pin(self.converse(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    #[test]
    fn parses_urls_and_encodes() {
        let t = SmtpTarget::parse("smtp://me%40x.com:p%3Ass@mail.internal:2525").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.implicit_tls), ("mail.internal", 2525, false));
        assert_eq!(t.user.as_deref(), Some("me@x.com"));
        assert_eq!(t.pass.as_deref(), Some("p:ss"));
        assert_eq!(SmtpTarget::parse("smtp://relay").unwrap().port, 587);
        let s = SmtpTarget::parse("smtps://u:p@smtp.example.com").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls), ("smtp.example.com", 465, true));
        let v6 = SmtpTarget::parse("smtp://[::1]:2525").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 2525));
        assert_eq!(SmtpTarget::parse("smtps://[::1]").unwrap().port, 465);
        assert!(SmtpTarget::parse("smtp://[::1").is_err());
        assert!(SmtpTarget::parse("smtp://[::1]x").is_err());
        assert!(SmtpTarget::parse("http://x").is_err());
        assert!(SmtpTarget::parse("smtp://h:99999").is_err());
        assert!(SmtpTarget::parse("smtp://bad host").is_err());
        assert_eq!(base64(b"\0u\0p"), "AHUAcA==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }

    #[test]
    fn auth_in_clear_only_to_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for remote in ["203.0.113.7", "10.0.0.5", "192.168.1.2", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert!(!auth_allowed(false, ip(remote)), "{remote} without TLS");
            assert!(auth_allowed(true, ip(remote)), "{remote} over TLS");
        }
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(auth_allowed(false, ip(local)), "{local}");
        }
        let t = SmtpTarget::parse("smtp://u:secret@mail.example.com:587").unwrap();
        let msg = clear_auth_refused(&t).to_string();
        assert!(msg.contains("KEEL_SMTP_URL") && msg.contains("smtps://") && msg.contains("mail.example.com:587"));
        assert!(!msg.contains("secret"), "never repeats the password: {msg}");
    }

    #[test]
    fn reads_starttls_from_ehlo() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(offers_starttls(&lines(&["mx.example.com", "SIZE 1000", "starttls", "AUTH PLAIN"])));
        assert!(!offers_starttls(&lines(&["mx.example.com", "AUTH PLAIN", "X-STARTTLS-LIKE"])));
    }

    /// A CA made for this test run, and a server configuration with a leaf it signed for
    /// 127.0.0.1 and localhost.
    fn test_ca() -> (CertificateDer<'static>, Arc<ServerConfig>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "Keel SMTP test CA");
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server =
            ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone()], key)
                .unwrap();
        (ca.der().clone(), Arc::new(server))
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// smtps: TLS before the greeting.
        Implicit,
        /// Plain text, STARTTLS advertised.
        StartTls,
        /// Plain text, no STARTTLS.
        Plain,
    }

    /// Every line the server received, with whether it arrived over TLS.
    type Seen = Vec<(bool, String)>;

    /// One SMTP session on 127.0.0.1; the task ends with what the server saw.
    async fn smtp_server(mode: Mode, tls: Arc<ServerConfig>) -> (u16, tokio::task::JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TlsAcceptor::from(tls);
        let task = tokio::spawn(async move {
            let mut seen = Seen::new();
            let (tcp, _) = listener.accept().await.unwrap();
            if mode == Mode::Implicit {
                // A failed handshake (the client refused the certificate) ends the session.
                let Ok(tls) = acceptor.accept(tcp).await else { return seen };
                let mut s = BufReader::new(tls);
                greet(&mut s).await;
                session(&mut s, true, false, &mut seen).await;
                return seen;
            }
            let mut s = BufReader::new(tcp);
            greet(&mut s).await;
            if session(&mut s, false, mode == Mode::StartTls, &mut seen).await {
                let Ok(tls) = acceptor.accept(s.into_inner()).await else { return seen };
                session(&mut BufReader::new(tls), true, false, &mut seen).await;
            }
            seen
        });
        (port, task)
    }

    async fn greet<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>) {
        reply(s, "220 test.local ESMTP\r\n").await;
    }

    async fn reply<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>, text: &str) {
        s.get_mut().write_all(text.as_bytes()).await.unwrap();
        s.get_mut().flush().await.unwrap();
    }

    /// Answers commands until QUIT, the client leaving, or STARTTLS (returns true: upgrade now).
    async fn session<S: AsyncRead + AsyncWrite + Unpin>(
        s: &mut BufReader<S>,
        tls: bool,
        offer_starttls: bool,
        seen: &mut Seen,
    ) -> bool {
        loop {
            let mut line = String::new();
            if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                return false;
            }
            let line = line.trim_end().to_owned();
            seen.push((tls, line.clone()));
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" if offer_starttls => reply(s, "250-test.local\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n").await,
                "EHLO" => reply(s, "250-test.local\r\n250 AUTH PLAIN\r\n").await,
                "STARTTLS" => {
                    reply(s, "220 go ahead\r\n").await;
                    return true;
                }
                "AUTH" => reply(s, "235 accepted\r\n").await,
                "MAIL" | "RCPT" => reply(s, "250 ok\r\n").await,
                "DATA" => {
                    reply(s, "354 go on\r\n").await;
                    loop {
                        let mut l = String::new();
                        if s.read_line(&mut l).await.unwrap_or(0) == 0 {
                            return false;
                        }
                        let l = l.trim_end().to_owned();
                        seen.push((tls, l.clone()));
                        if l == "." {
                            break;
                        }
                    }
                    reply(s, "250 queued\r\n").await;
                }
                "QUIT" => {
                    reply(s, "221 bye\r\n").await;
                    return false;
                }
                _ => reply(s, "500 unknown\r\n").await,
            }
        }
    }

    fn message() -> Message {
        Message {
            to: keel_ids::Email::parse("jane@example.com").unwrap(),
            subject: "Your invoice".into(),
            text: "Hello Jane,\n.hidden dot".into(),
        }
    }

    fn lines(seen: &Seen) -> Vec<&str> {
        seen.iter().map(|(_, l)| l.as_str()).collect()
    }

    /// `\0keel\0s3cret`, as AUTH PLAIN sends it.
    const AUTH: &str = "AUTH PLAIN AGtlZWwAczNjcmV0";

    #[tokio::test]
    async fn smtps_delivers_the_whole_message_over_tls() {
        let (ca, server) = test_ca();
        let (port, task) = smtp_server(Mode::Implicit, server).await;
        let url = format!("smtps://keel:s3cret@127.0.0.1:{port}");
        let mailer = SmtpMailer::with_extra_roots(&url, "keel@example.com", vec![ca]).unwrap();
        mailer.send(&message()).await.unwrap();
        let seen = task.await.unwrap();
        assert!(seen.iter().all(|(tls, _)| *tls), "every byte over TLS: {seen:?}");
        assert_eq!(
            lines(&seen),
            [
                "EHLO keel",
                AUTH,
                "MAIL FROM:<keel@example.com>",
                "RCPT TO:<jane@example.com>",
                "DATA",
                "From: keel@example.com",
                "To: jane@example.com",
                "Subject: Your invoice",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "Hello Jane,",
                "..hidden dot",
                ".",
                "QUIT",
            ]
        );
    }

    #[tokio::test]
    async fn starttls_upgrades_before_auth_and_says_ehlo_again() {
        let (ca, server) = test_ca();
        let (port, task) = smtp_server(Mode::StartTls, server).await;
        let url = format!("smtp://keel:s3cret@127.0.0.1:{port}");
        let mailer = SmtpMailer::with_extra_roots(&url, "keel@example.com", vec![ca]).unwrap();
        mailer.send(&message()).await.unwrap();
        let seen = task.await.unwrap();
        assert_eq!(
            seen[..4],
            [
                (false, "EHLO keel".to_owned()),
                (false, "STARTTLS".to_owned()),
                (true, "EHLO keel".to_owned()),
                (true, AUTH.to_owned()),
            ]
        );
        assert!(seen[2..].iter().all(|(tls, _)| *tls), "everything after STARTTLS over TLS: {seen:?}");
        assert!(lines(&seen).contains(&"Subject: Your invoice"));
        assert_eq!(lines(&seen).last(), Some(&"QUIT"));
    }

    #[tokio::test]
    async fn plain_text_auth_is_allowed_to_a_loopback_relay() {
        let (_, server) = test_ca();
        let (port, task) = smtp_server(Mode::Plain, server).await;
        let mailer = SmtpMailer::new(&format!("smtp://keel:s3cret@127.0.0.1:{port}"), "keel@example.com").unwrap();
        mailer.send(&message()).await.unwrap();
        let seen = task.await.unwrap();
        assert_eq!(lines(&seen)[..2], ["EHLO keel", AUTH]);
        assert!(lines(&seen).contains(&"Hello Jane,"));
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_and_sends_nothing() {
        for mode in [Mode::Implicit, Mode::StartTls] {
            let (_, server) = test_ca();
            let (port, task) = smtp_server(mode, server).await;
            let scheme = if mode == Mode::Implicit { "smtps" } else { "smtp" };
            // No extra roots: the test CA is not among Mozilla's.
            let mailer =
                SmtpMailer::new(&format!("{scheme}://keel:s3cret@127.0.0.1:{port}"), "keel@example.com").unwrap();
            let err = mailer.send(&message()).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, MailError::Transient(_)), "{text}");
            assert!(text.contains("certificate") && text.contains("127.0.0.1"), "{text}");
            let seen = task.await.unwrap();
            let expected: Seen = match mode {
                Mode::Implicit => vec![],
                _ => vec![(false, "EHLO keel".to_owned()), (false, "STARTTLS".to_owned())],
            };
            assert_eq!(seen, expected, "nothing but the upgrade before TLS, nothing after");
        }
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let t = SmtpTarget::parse("smtps://mailer:hunter2-secret@smtp.example.com").unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("smtp.example.com"), "{shown}");
    }
}
