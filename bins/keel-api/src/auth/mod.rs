//! Authentication at the edge: signed session cookies, the root session middleware, bearer
//! tokens, and the `Principal` extractor that resolves who is calling and in which org.

mod cookie;
mod identity_cache;
mod principal;
mod session_layer;

pub(crate) use cookie::{cookie_value_of, SessionSigner, COOKIE_NAME};
pub(crate) use identity_cache::IdentityCache;
pub(crate) use principal::bearer_of as bearer_token;
pub use principal::Principal;
pub(crate) use session_layer::{session_middleware, ResolvedSession};
