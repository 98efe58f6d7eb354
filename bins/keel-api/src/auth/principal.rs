//! `Principal`: who is calling, in which org, with which role. Resolved from the session (set by
//! the root session middleware) or a bearer API token; the requested org (`X-Org-Id` or the
//! session's choice) is accepted only when the user can reach it.

use super::session_layer::{ResolvedSession, SessionLookupFailed};
use crate::{ApiError, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use keel_ids::{OrgId, UserId};
use keel_tenancy::{Permission, Role};

/// The org header clients use to choose their active org.
pub(crate) const ORG_HEADER: &str = "x-org-id";
/// The server's own org hint, re-applied after the session is resolved (inbound copies are
/// stripped before anything runs).
pub(crate) const ORG_HINT_HEADER: &str = "x-keel-org-hint";

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub org_id: OrgId,
    pub role: Role,
}

impl Principal {
    /// 403 unless the role grants `p` in the active org.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.permits(p) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("your role ({}) does not grant {}", self.role, p.as_str())))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (user_id, session_org) = if let Some(s) = parts.extensions.get::<ResolvedSession>() {
            (s.user_id, s.active_org)
        } else if let Some(token) = bearer(parts) {
            match state.tenancy.resolve_token(&token).await.map_err(crate::error::from_tenancy)? {
                Some(u) => {
                    state.identities.put(&token, u);
                    (u, None)
                }
                None => return Err(ApiError::unauthorized("the API token is invalid or revoked")),
            }
        } else if parts.extensions.get::<SessionLookupFailed>().is_some() {
            return Err(ApiError::unavailable("sessions cannot be checked right now; retry shortly", 2));
        } else {
            return Err(ApiError::unauthorized("sign in, or send Authorization: Bearer <API token>"));
        };

        let requested = match parts.headers.get(ORG_HEADER) {
            Some(v) => {
                let s = v.to_str().map_err(|_| ApiError::bad_request("X-Org-Id must be a UUID"))?;
                Some(OrgId::parse(s).map_err(|e| ApiError::bad_request(format!("X-Org-Id: {e}")))?)
            }
            None => None,
        };
        let (org_id, role) = match requested.or(session_org) {
            Some(o) => (o, state.tenancy.role_in(user_id, o).await.map_err(crate::error::from_tenancy)?),
            None => {
                // No org asked for: the first membership, checked against the same list.
                let ms = state.tenancy.memberships(user_id).await.map_err(crate::error::from_tenancy)?;
                let o = ms
                    .first()
                    .map(|m| m.org_id)
                    .ok_or_else(|| ApiError::forbidden("you are not a member of any org"))?;
                (o, state.tenancy.role_among(&ms, o).await.map_err(crate::error::from_tenancy)?)
            }
        };
        let role = role.ok_or_else(|| ApiError::forbidden("that org is not reachable from your memberships"))?;
        if let Ok(v) = HeaderValue::from_str(&org_id.to_string()) {
            parts.headers.insert(ORG_HINT_HEADER, v);
        }
        Ok(Principal { user_id, org_id, role })
    }
}

/// The bearer token, if the header is well-formed; a malformed header counts as absent.
pub(crate) fn bearer(parts: &Parts) -> Option<String> {
    bearer_of(&parts.headers)
}

pub(crate) fn bearer_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer "))?.trim();
    (!t.is_empty()).then(|| t.to_owned())
}
