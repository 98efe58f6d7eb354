//! UUID-backed tenant and user identifiers.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        #[doc = concat!("A ", $what, " identifier (a UUID), built only by parsing or generation.")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) identifier.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the canonical or simple UUID text form.
            pub fn parse(s: &str) -> Result<Self, ParseError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| ParseError::Uuid { what: $what, got: s.chars().take(64).collect() })
            }

            /// Wraps a UUID read back from our own storage, where it was written by `generate`/`parse`.
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }

            /// The UUID inside, for binding in a query or building another id type.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(OrgId, "org id");
uuid_id!(UserId, "user id");
