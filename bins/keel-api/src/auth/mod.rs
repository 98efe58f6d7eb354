//! Authentication at the edge: signed session cookies, the root session middleware, bearer
//! tokens, the `Principal` extractor that resolves who is calling and in which org, and the
//! per-account sign-in throttle.

mod cookie;
mod identity_cache;
mod principal;
mod session_layer;
mod throttle;

pub(crate) use cookie::{cookie_value_of, SessionSigner, COOKIE_NAME};
pub(crate) use identity_cache::IdentityCache;
pub(crate) use principal::bearer_of as bearer_token;
pub use principal::Principal;
pub(crate) use session_layer::{session_middleware, ResolvedSession, SessionLookupFailed};
pub use throttle::{Attempt, SignInThrottle};
