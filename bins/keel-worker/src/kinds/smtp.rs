//! SMTP submission (`KEEL_SMTP_URL`) through lettre's connection, with Keel's rules on top.
//! `smtps://user:pass@host:465` speaks TLS from the first byte; `smtp://user:pass@host:587`
//! upgrades with STARTTLS whenever the server's EHLO offers it (lettre says EHLO again over
//! TLS). TLS is rustls (ring) with Mozilla's roots, and the certificate is always checked
//! against the URL's host. Nothing goes out in clear text over a network: the password only
//! over TLS or to a loopback relay, and a message to a server off this host that offers no
//! STARTTLS is refused unless `KEEL_SMTP_ALLOW_PLAINTEXT=true`. Both are decided on the
//! address actually connected to. 4xx replies are temporary (the job retries), 5xx permanent;
//! TLS failures are temporary, since the message is fine and the server or its certificate
//! can be fixed while the job waits.

use super::compose::Sender;
use super::mail::{MailError, MailFuture, Mailer, Message};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
    pub(crate) fn parse(raw: &str) -> Result<SmtpTarget, String> {
        let forms = "smtps:// (TLS, e.g. smtps://user:pass@smtp.example.com:465) or smtp:// \
                     (STARTTLS when offered, e.g. smtp://user:pass@smtp.example.com:587)";
        let (implicit_tls, default_port) = if raw.starts_with("smtps://") {
            (true, 465)
        } else if raw.starts_with("smtp://") {
            (false, 587)
        } else {
            return Err(format!("must start with {forms}"));
        };
        // url's errors name the part that is wrong, never the text, so the password stays out.
        let url = url::Url::parse(raw).map_err(|e| format!("is not a URL like {forms}: {e}"))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("names no host".into()),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err("has a path, query or fragment; only smtp[s]://user:pass@host:port is read".into());
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let user = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
        let pass = url.password().map(decode);
        let port = url.port().unwrap_or(default_port);
        Ok(SmtpTarget { host, port, user, pass, implicit_tls })
    }
}

pub struct SmtpMailer {
    target: SmtpTarget,
    from: Sender,
    /// Built once: the root store is parsed at start, not per message.
    tls: TlsParameters,
    /// `KEEL_SMTP_ALLOW_PLAINTEXT`: mail (never the password) may cross a network in clear.
    allow_plaintext: bool,
    hello: ClientId,
    /// Whether a loopback peer counts as this host. Always true outside this module's tests,
    /// which have only loopback servers and need one to stand for a server off the host.
    loopback_is_local: bool,
}

impl SmtpMailer {
    pub fn new(url: &str, from: Sender, allow_plaintext: bool) -> Result<SmtpMailer, String> {
        Self::with_extra_roots(url, from, allow_plaintext, Vec::new())
    }

    /// `new`, also trusting `extra_roots` (DER) beside Mozilla's: the tests' own CA.
    /// Crate-internal so production can never be configured to trust anything else.
    pub(crate) fn with_extra_roots(
        url: &str,
        from: Sender,
        allow_plaintext: bool,
        extra_roots: Vec<Vec<u8>>,
    ) -> Result<SmtpMailer, String> {
        let target = SmtpTarget::parse(url)?;
        let mut tls = TlsParameters::builder(target.host.clone());
        for der in extra_roots {
            let cert =
                Certificate::from_der(der).map_err(|e| format!("cannot trust an extra root certificate: {e}"))?;
            tls = tls.add_root_certificate(cert);
        }
        // Checked here so `keel-ops config check` reports a host rustls cannot verify, not the
        // first email.
        let tls = tls.build_rustls().map_err(|e| format!("cannot set up TLS for {}: {e}", target.host))?;
        Ok(SmtpMailer {
            target,
            from,
            tls,
            allow_plaintext,
            hello: ClientId::Domain("keel".to_owned()),
            loopback_is_local: true,
        })
    }

    fn is_local(&self, peer: IpAddr) -> bool {
        self.loopback_is_local && peer.to_canonical().is_loopback()
    }

    async fn converse(&self, id: &str, msg: &Message) -> Result<(), MailError> {
        let email = self.from.compose(id, msg)?;
        let t = &self.target;
        let addrs: Vec<SocketAddr> = step(tokio::net::lookup_host((t.host.as_str(), t.port)))
            .await?
            .map_err(|e| MailError::Transient(format!("cannot resolve {}: {e}", t.host)))?
            .collect();
        // Connected address by address (not by name), so the rules below judge where the bytes
        // actually go.
        let mut last = None;
        for addr in addrs {
            let tls = t.implicit_tls.then(|| self.tls.clone());
            match step(AsyncSmtpConnection::connect_tokio1(addr, Some(STEP_TIMEOUT), &self.hello, tls, None)).await? {
                Ok(mut conn) => {
                    return match self.deliver(&mut conn, addr.ip(), &email).await {
                        Ok(()) => Ok(()),
                        Err(Failed { error, quit }) => {
                            if quit {
                                conn.abort().await;
                            }
                            Err(error)
                        }
                    };
                }
                Err(e) => last = Some(self.error(e)),
            }
        }
        Err(last.unwrap_or_else(|| MailError::Transient(format!("{} resolved to no address", t.host))))
    }

    /// STARTTLS when offered, Keel's clear-text rules, AUTH, MAIL/RCPT/DATA, QUIT.
    async fn deliver(
        &self,
        conn: &mut AsyncSmtpConnection,
        peer: IpAddr,
        email: &lettre::Message,
    ) -> Result<(), Failed> {
        let t = &self.target;
        if !conn.is_encrypted() {
            if conn.can_starttls() {
                // A failed upgrade leaves no stream to say QUIT on (and nothing may go out in
                // clear after STARTTLS anyway).
                let upgraded =
                    step(conn.starttls(self.tls.clone(), &self.hello)).await.and_then(|r| r.map_err(|e| self.error(e)));
                upgraded.map_err(|error| Failed { error, quit: false })?;
            } else if !self.is_local(peer) && !self.allow_plaintext {
                return Err(plaintext_refused(t).into());
            }
        }
        if let (Some(u), Some(p)) = (&t.user, &t.pass) {
            if !auth_allowed(conn.is_encrypted(), self.is_local(peer)) {
                return Err(clear_auth_refused(t).into());
            }
            let creds = Credentials::new(u.clone(), p.clone());
            step(conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)).await?.map_err(|e| self.error(e))?;
        }
        step(conn.send(email.envelope(), &email.formatted())).await?.map_err(|e| self.error(e))?;
        let _ = step(conn.quit()).await;
        Ok(())
    }

    /// 5xx and what the message itself cannot pass (an address the server cannot take) are
    /// permanent; everything else (4xx, TLS, the network, timeouts) is worth retrying.
    fn error(&self, e: lettre::transport::smtp::Error) -> MailError {
        let t = &self.target;
        if e.is_tls() {
            return MailError::Transient(format!(
                "TLS with {}:{} failed: {e} (the server's certificate must chain to a Mozilla root and name {})",
                t.host, t.port, t.host
            ));
        }
        if e.is_permanent() || (e.is_client() && e.to_string().contains("non-ascii")) {
            MailError::Permanent(format!("{}:{}: {e}", t.host, t.port))
        } else {
            MailError::Transient(format!("{}:{}: {e}", t.host, t.port))
        }
    }
}

/// Why a conversation stopped, and whether the connection can still say QUIT.
struct Failed {
    error: MailError,
    quit: bool,
}

impl From<MailError> for Failed {
    fn from(error: MailError) -> Self {
        Failed { error, quit: true }
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

/// Temporary, as above: nothing is wrong with the message.
fn plaintext_refused(t: &SmtpTarget) -> MailError {
    MailError::Transient(format!(
        "KEEL_SMTP_URL: {}:{} is not on this host and does not offer STARTTLS, so the message would cross \
         the network unencrypted; use smtps://...:465, enable STARTTLS on the server, or set \
         KEEL_SMTP_ALLOW_PLAINTEXT=true to send it in clear anyway",
        t.host, t.port
    ))
}

/// Whether AUTH may go out: always over TLS; without it only to this host, so the
/// credentials never cross a network in clear.
fn auth_allowed(encrypted: bool, local_peer: bool) -> bool {
    encrypted || local_peer
}

async fn step<T>(f: impl std::future::Future<Output = T>) -> Result<T, MailError> {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .map_err(|_| MailError::Transient("the SMTP server did not answer within 30 s".into()))
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, id: &'a str, msg: &'a Message) -> MailFuture<'a> {
        Box::pin(self.converse(id, msg))
    }
}

#[cfg(test)]
mod tests {
    //! Against a real SMTP server on 127.0.0.1 (its own CA for TLS), recording every line it
    //! received and whether it came over TLS.

    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    #[test]
    fn parses_urls() {
        let t = SmtpTarget::parse("smtp://me%40x.com:p%3Ass@mail.internal:2525").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.implicit_tls), ("mail.internal", 2525, false));
        assert_eq!(t.user.as_deref(), Some("me@x.com"));
        assert_eq!(t.pass.as_deref(), Some("p:ss"));
        assert_eq!(SmtpTarget::parse("smtp://relay").unwrap().port, 587);
        assert_eq!(SmtpTarget::parse("smtp://relay/").unwrap().user, None);
        let s = SmtpTarget::parse("smtps://u:p@smtp.example.com").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.implicit_tls), ("smtp.example.com", 465, true));
        let v6 = SmtpTarget::parse("smtp://[::1]:2525").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 2525));
        assert_eq!(SmtpTarget::parse("smtps://[::1]").unwrap().port, 465);
        for bad in ["smtp://[::1", "smtp://[::1]x", "http://x", "smtp://h:99999", "smtp://bad host", "smtp://h/x"] {
            assert!(SmtpTarget::parse(bad).is_err(), "{bad}");
        }
        let e = SmtpTarget::parse("smtp://u:hunter2@h:99999").unwrap_err();
        assert!(!e.contains("hunter2"), "never repeats the password: {e}");
    }

    #[test]
    fn auth_in_clear_only_to_this_host() {
        assert!(!auth_allowed(false, false));
        assert!(auth_allowed(true, false) && auth_allowed(false, true));
        let from = || Sender::parse("keel@example.com").unwrap();
        let m = SmtpMailer::new("smtp://relay:25", from(), false).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for remote in ["203.0.113.7", "10.0.0.5", "192.168.1.2", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert!(!m.is_local(ip(remote)), "{remote}");
        }
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(m.is_local(ip(local)), "{local}");
        }
        let t = SmtpTarget::parse("smtp://u:secret@mail.example.com:587").unwrap();
        for msg in [clear_auth_refused(&t).to_string(), plaintext_refused(&t).to_string()] {
            assert!(msg.contains("KEEL_SMTP_URL") && msg.contains("smtps://") && msg.contains("mail.example.com:587"));
            assert!(!msg.contains("secret"), "never repeats the password: {msg}");
        }
        assert!(plaintext_refused(&t).to_string().contains("KEEL_SMTP_ALLOW_PLAINTEXT=true"));
    }

    /// A CA made for this test run, and a server configuration with a leaf it signed for
    /// 127.0.0.1 and localhost.
    fn test_ca() -> (Vec<u8>, Arc<ServerConfig>) {
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
        let ca: &CertificateDer<'_> = ca.der();
        (ca.to_vec(), Arc::new(server))
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
            let line = line.trim_end_matches(['\r', '\n']).to_owned();
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
                        let l = l.trim_end_matches(['\r', '\n']).to_owned();
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

    fn from() -> Sender {
        Sender::parse("keel@example.com").unwrap()
    }

    fn lines(seen: &Seen) -> Vec<&str> {
        seen.iter().map(|(_, l)| l.as_str()).collect()
    }

    /// The DATA part: header fields (folded lines joined, RFC 5322 2.2.3) up to the blank
    /// line, then the body lines before ".".
    fn data(seen: &Seen) -> (Vec<String>, Vec<&str>) {
        let all = lines(seen);
        let start = all.iter().position(|l| *l == "DATA").expect("DATA sent") + 1;
        let end = all.iter().position(|l| *l == ".").expect("message ended");
        let msg = &all[start..end];
        let blank = msg.iter().position(|l| l.is_empty()).expect("header/body separator");
        let mut headers: Vec<String> = Vec::new();
        for l in &msg[..blank] {
            match headers.last_mut() {
                Some(h) if l.starts_with([' ', '\t']) => h.push_str(l),
                _ => headers.push((*l).to_owned()),
            }
        }
        (headers, msg[blank + 1..].to_vec())
    }

    fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
        let prefix = format!("{name}: ");
        headers.iter().find_map(|h| h.strip_prefix(prefix.as_str()))
    }

    const ID: &str = "0197a5c8-0000-7000-8000-00000000abcd";

    /// `\0keel\0s3cret`, as AUTH PLAIN sends it.
    const AUTH: &str = "AUTH PLAIN AGtlZWwAczNjcmV0";

    #[tokio::test]
    async fn smtps_delivers_the_whole_message_over_tls() {
        let (ca, server) = test_ca();
        let (port, task) = smtp_server(Mode::Implicit, server).await;
        let url = format!("smtps://keel:s3cret@127.0.0.1:{port}");
        let mailer = SmtpMailer::with_extra_roots(&url, from(), false, vec![ca]).unwrap();
        mailer.send(ID, &message()).await.unwrap();
        let seen = task.await.unwrap();
        assert!(seen.iter().all(|(tls, _)| *tls), "every byte over TLS: {seen:?}");
        let all = lines(&seen);
        assert_eq!(all[..5], ["EHLO keel", AUTH, "MAIL FROM:<keel@example.com>", "RCPT TO:<jane@example.com>", "DATA"]);
        assert_eq!(all[all.len() - 2..], [".", "QUIT"]);
        let (headers, body) = data(&seen);
        assert_eq!(header(&headers, "From"), Some("keel@example.com"));
        assert_eq!(header(&headers, "To"), Some("jane@example.com"));
        assert_eq!(header(&headers, "Subject"), Some("Your invoice"));
        assert_eq!(header(&headers, "Message-ID"), Some(format!("<{ID}@example.com>").as_str()));
        let date = header(&headers, "Date").expect("a Date header");
        assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "RFC 5322 date: {date}");
        assert!(header(&headers, "Content-Type").is_some_and(|c| c.starts_with("text/plain")), "{headers:?}");
        assert_eq!(body, ["Hello Jane,", "..hidden dot"], "dot-stuffed");
    }

    #[tokio::test]
    async fn starttls_upgrades_before_auth_and_says_ehlo_again() {
        let (ca, server) = test_ca();
        let (port, task) = smtp_server(Mode::StartTls, server).await;
        let url = format!("smtp://keel:s3cret@127.0.0.1:{port}");
        let mailer = SmtpMailer::with_extra_roots(&url, from(), false, vec![ca]).unwrap();
        mailer.send(ID, &message()).await.unwrap();
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
        assert_eq!(header(&data(&seen).0, "Subject"), Some("Your invoice"));
        assert_eq!(lines(&seen).last(), Some(&"QUIT"));
    }

    #[tokio::test]
    async fn plain_text_auth_is_allowed_to_a_loopback_relay() {
        let (_, server) = test_ca();
        let (port, task) = smtp_server(Mode::Plain, server).await;
        let mailer = SmtpMailer::new(&format!("smtp://keel:s3cret@127.0.0.1:{port}"), from(), false).unwrap();
        mailer.send(ID, &message()).await.unwrap();
        let seen = task.await.unwrap();
        assert_eq!(lines(&seen)[..2], ["EHLO keel", AUTH]);
        assert_eq!(data(&seen).1, ["Hello Jane,", "..hidden dot"]);
    }

    /// The same server standing for one off this host (see `loopback_is_local`).
    fn remote(mut m: SmtpMailer) -> SmtpMailer {
        m.loopback_is_local = false;
        m
    }

    #[tokio::test]
    async fn a_server_off_this_host_without_starttls_gets_nothing_unless_plaintext_is_allowed() {
        let (_, server) = test_ca();
        let (port, task) = smtp_server(Mode::Plain, server.clone()).await;
        let mailer = remote(SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), from(), false).unwrap());
        let err = mailer.send(ID, &message()).await.unwrap_err();
        assert!(matches!(err, MailError::Transient(_)), "{err}");
        assert!(err.to_string().contains("KEEL_SMTP_ALLOW_PLAINTEXT=true"), "{err}");
        assert_eq!(lines(&task.await.unwrap()), ["EHLO keel", "QUIT"], "no envelope, no message");

        // KEEL_SMTP_ALLOW_PLAINTEXT=true: the message goes out in clear...
        let (port, task) = smtp_server(Mode::Plain, server.clone()).await;
        let mailer = remote(SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), from(), true).unwrap());
        mailer.send(ID, &message()).await.unwrap();
        let seen = task.await.unwrap();
        assert!(seen.iter().all(|(tls, _)| !tls) && lines(&seen).contains(&"RCPT TO:<jane@example.com>"));

        // ...but never the password.
        let (port, task) = smtp_server(Mode::Plain, server).await;
        let mailer = remote(SmtpMailer::new(&format!("smtp://keel:s3cret@127.0.0.1:{port}"), from(), true).unwrap());
        let err = mailer.send(ID, &message()).await.unwrap_err();
        assert!(err.to_string().contains("password is never sent in clear"), "{err}");
        assert_eq!(lines(&task.await.unwrap()), ["EHLO keel", "QUIT"]);
    }

    /// Decodes a header value made of plain words and RFC 2047 `=?utf-8?b?…?=` words (how
    /// lettre writes non-ASCII): the space between two encoded words is not part of the text.
    fn decode_words(value: &str) -> String {
        use base64::Engine;
        let mut out = String::new();
        let mut last_encoded = false;
        for (i, w) in value.split_whitespace().enumerate() {
            let decoded = w
                .strip_prefix("=?utf-8?b?")
                .and_then(|w| w.strip_suffix("?="))
                .map(|b64| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap());
            if i > 0 && !(last_encoded && decoded.is_some()) {
                out.push(' ');
            }
            last_encoded = decoded.is_some();
            out.push_str(decoded.as_deref().unwrap_or(w));
        }
        out
    }

    #[tokio::test]
    async fn non_ascii_headers_are_encoded_and_long_lines_are_wrapped() {
        let (ca, server) = test_ca();
        let (port, task) = smtp_server(Mode::StartTls, server).await;
        let url = format!("smtp://127.0.0.1:{port}");
        let sender = Sender::parse("Équipe Keel <keel@example.com>").unwrap();
        let mailer = SmtpMailer::with_extra_roots(&url, sender, false, vec![ca]).unwrap();
        let long = "é".repeat(300) + &"x".repeat(2000);
        let msg = Message {
            to: keel_ids::Email::parse("jane@example.com").unwrap(),
            subject: "Votre facture n° 42 — réglée ✓".into(),
            text: format!("Bonjour,\n{long}\nfin"),
        };
        mailer.send(ID, &msg).await.unwrap();
        let seen = task.await.unwrap();
        for (_, l) in &seen {
            assert!(l.is_ascii(), "every line on the wire is ASCII: {l:?}");
            assert!(l.len() <= 998, "no line over RFC 5322's 998 octets: {} octets", l.len());
        }
        let (headers, body) = data(&seen);
        let subject = header(&headers, "Subject").unwrap();
        assert!(subject.contains("=?utf-8?b?"), "RFC 2047 encoded: {subject}");
        assert_eq!(decode_words(subject), msg.subject);
        let from = header(&headers, "From").unwrap();
        let (name, addr) = from.rsplit_once(' ').unwrap();
        assert_eq!((decode_words(name).as_str(), addr), ("Équipe Keel", "<keel@example.com>"));
        let cte = header(&headers, "Content-Transfer-Encoding").unwrap();
        assert!(matches!(cte, "quoted-printable" | "base64"), "{cte}");
        assert!(body.len() > 3, "the long line was wrapped: {body:?}");
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_and_sends_nothing() {
        for mode in [Mode::Implicit, Mode::StartTls] {
            let (_, server) = test_ca();
            let (port, task) = smtp_server(mode, server).await;
            let scheme = if mode == Mode::Implicit { "smtps" } else { "smtp" };
            // No extra roots: the test CA is not among Mozilla's.
            let mailer = SmtpMailer::new(&format!("{scheme}://keel:s3cret@127.0.0.1:{port}"), from(), false).unwrap();
            let err = mailer.send(ID, &message()).await.unwrap_err();
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
