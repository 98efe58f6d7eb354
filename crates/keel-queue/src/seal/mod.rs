//! Sealed job arguments: a job kind (or some of its fields) declared sensitive is encrypted
//! with XChaCha20-Poly1305 when it is enqueued, opened only in the worker just before its
//! handler runs, shown as `[sealed]` everywhere else, and erased when the job completes.
//!
//! A sealed value is stored in the payload as an envelope carrying the id of the key that
//! sealed it beside the ciphertext, `{"$sealed": {"kid": "k2", "ct": "<base64>"}}`, so keys
//! rotate: [`Keyring`] seals with its current key and opens with it or any older key still
//! listed. The ciphertext is bound to the job's kind, id and field (associated data), so an
//! envelope copied into another job or field does not open.

mod key;
mod keyring;
mod payload;
mod settings;

pub use key::{JobKey, MAX_KEY_ID_LEN};
pub use keyring::Keyring;
pub(crate) use payload::{open_payload, seal_payload};
pub use payload::{redact_payload, SEALED_MARK};
pub use settings::{KeySettings, DECRYPTION_KEYS_VAR, DEV_KEY_FILE, ENCRYPTION_KEY_VAR};

/// What of a job's payload is sealed: all of it, or some top-level fields of a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sensitive {
    /// The whole payload becomes one envelope.
    Payload,
    /// These top-level fields become envelopes; the rest stays readable (and searchable).
    Fields(Vec<String>),
}

/// Why sealing or opening failed. Messages name keys by id only, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A key (or the key file) is malformed; names the variable or file and the fix.
    #[error("{source_name}: {message}")]
    BadKey {
        /// `KEEL_JOB_ENCRYPTION_KEY`, `KEEL_JOB_DECRYPTION_KEYS` or the key file's path.
        source_name: String,
        /// What is wrong and the accepted form (never the value).
        message: String,
    },
    /// A sensitive job was enqueued, or a sealed one claimed, with no keyring configured.
    #[error(
        "job kind {kind:?} is sealed but this process has no job encryption key: set KEEL_JOB_ENCRYPTION_KEY \
         (ID:BASE64 of 32 random bytes) or give the store a Keyring"
    )]
    NoKeyring {
        /// The job's kind.
        kind: String,
    },
    /// The envelope names a key this keyring does not hold (rotated away).
    #[error(
        "sealed with key {kid:?}, which this process does not hold (it has {held}): list that key in \
         KEEL_JOB_DECRYPTION_KEYS, then retry the job"
    )]
    UnknownKey {
        /// The key id in the envelope.
        kid: String,
        /// The ids this keyring holds, comma-separated.
        held: String,
    },
    /// The ciphertext does not authenticate under the named key: tampered, moved from another
    /// job or field, or a different key under the same id.
    #[error("sealed value of field {field:?} does not open with key {kid:?}: altered, copied from another job, or the key under that id changed")]
    Tampered {
        /// The top-level field, or `payload` for a whole sealed payload.
        field: String,
        /// The key id in the envelope.
        kid: String,
    },
    /// The payload is not what sealing or opening needs (not an object, a broken envelope).
    #[error("{0}")]
    Malformed(String),
}
