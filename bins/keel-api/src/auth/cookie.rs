//! The session cookie: `<session token>.<user id>.<hmac>`. The HMAC lets the rate limiter key
//! a request by user without a database round trip; the session itself is still checked in the
//! database before anything is authorized.

use hmac::{Hmac, Mac};
use keel_ids::UserId;
use sha2::Sha256;

pub(crate) const COOKIE_NAME: &str = "keel_session";

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub(crate) struct SessionSigner {
    key: [u8; 32],
    secure: bool,
}

/// A verified cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionCookie {
    pub(crate) token: String,
    pub(crate) user_id: UserId,
}

impl SessionSigner {
    /// The key comes from `INTERNAL_API_SECRET` (so every api process agrees), or is random
    /// per process in development, where one process serves.
    pub(crate) fn new(secret: Option<&str>, secure: bool) -> Self {
        let mut key = [0u8; 32];
        match secret {
            Some(s) => {
                let mut mac =
                    HmacSha256::new_from_slice(s.as_bytes()).unwrap_or_else(|_| unreachable!("any key length"));
                mac.update(b"keel session cookie v1");
                key.copy_from_slice(&mac.finalize().into_bytes());
            }
            None => {
                use rand_core_shim::fill;
                fill(&mut key);
            }
        }
        Self { key, secure }
    }

    fn mac(&self, token: &str, user: &UserId) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(token.as_bytes());
        mac.update(b".");
        mac.update(user.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub(crate) fn encode(&self, token: &str, user: &UserId) -> String {
        format!("{token}.{user}.{}", self.mac(token, user))
    }

    /// Verifies a cookie value in constant time; anything malformed or forged is `None`.
    pub(crate) fn decode(&self, value: &str) -> Option<SessionCookie> {
        let mut parts = value.splitn(3, '.');
        let (token, user, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if token.len() != 64 || sig.len() != 64 {
            return None;
        }
        let user_id = UserId::parse(user).ok()?;
        let sig = hex::decode(sig).ok()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(token.as_bytes());
        mac.update(b".");
        mac.update(user_id.to_string().as_bytes());
        mac.verify_slice(&sig).ok()?;
        Some(SessionCookie { token: token.to_owned(), user_id })
    }

    /// The session's CSRF token: HMAC-SHA256 of the session token under this signer's key, hex.
    /// Per session (a new sign-in gets a new one), stored nowhere, and unforgeable without the
    /// key; the operator console puts it in its forms and sends it as `X-CSRF-Token`.
    pub(crate) fn csrf_token(&self, session_token: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("any key length"));
        mac.update(b"keel csrf v1.");
        mac.update(session_token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `presented` is the session's CSRF token, compared in constant time.
    pub(crate) fn csrf_matches(&self, session_token: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.csrf_token(session_token).as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// `Set-Cookie` for a live session: HttpOnly always, Secure in production, SameSite=Lax so
    /// cross-site POSTs never carry it.
    pub(crate) fn set_cookie(&self, token: &str, user: &UserId, max_age_s: i64) -> String {
        format!(
            "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
            self.encode(token, user),
            max_age_s.max(0),
            if self.secure { "; Secure" } else { "" }
        )
    }

    pub(crate) fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The session cookie's value from the `Cookie` headers, if present.
pub(crate) fn cookie_value(headers: &http::HeaderMap) -> Option<&str> {
    cookie_value_of(headers, COOKIE_NAME)
}

/// A named cookie's value from the `Cookie` headers.
pub(crate) fn cookie_value_of<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

mod rand_core_shim {
    //! Random key bytes from the OS, via uuid's generator (already a dependency) to avoid
    //! pulling another RNG crate into the binary.
    pub(super) fn fill(buf: &mut [u8; 32]) {
        buf[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        buf[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_cookie_round_trips_and_rejects_forgery() {
        let s = SessionSigner::new(Some("x".repeat(40).as_str()), false);
        let user = UserId::generate();
        let token = "a".repeat(64);
        let v = s.encode(&token, &user);
        assert_eq!(s.decode(&v), Some(SessionCookie { token: token.clone(), user_id: user }));
        let other = UserId::generate();
        let forged = v.replace(&user.to_string(), &other.to_string());
        assert_eq!(s.decode(&forged), None);
        assert_eq!(s.decode("garbage"), None);
        assert_eq!(s.decode(""), None);
        let s2 = SessionSigner::new(Some("y".repeat(40).as_str()), false);
        assert_eq!(s2.decode(&v), None, "another key rejects it");
        assert!(s.set_cookie(&token, &user, 60).contains("HttpOnly"));
        assert!(SessionSigner::new(None, true).set_cookie(&token, &user, 60).contains("; Secure"));
    }

    #[test]
    fn csrf_tokens_are_per_session_and_per_key() {
        let s = SessionSigner::new(Some("x".repeat(40).as_str()), false);
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let ta = s.csrf_token(&a);
        assert!(s.csrf_matches(&a, &ta));
        assert!(!s.csrf_matches(&b, &ta), "another session's token is refused");
        assert!(!s.csrf_matches(&a, ""));
        assert!(!s.csrf_matches(&a, "not hex"));
        assert!(!s.csrf_matches(&a, &ta[..62]));
        assert_ne!(ta, s.encode(&a, &UserId::generate()).rsplit('.').next().unwrap(), "not the cookie's MAC");
        let s2 = SessionSigner::new(Some("y".repeat(40).as_str()), false);
        assert!(!s2.csrf_matches(&a, &ta), "another key refuses it");
    }
}
