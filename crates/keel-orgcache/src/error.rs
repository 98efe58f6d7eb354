//! Errors returned to callers of the cache.

use crate::bucket::Bucket;
use crate::key::NameError;
use std::sync::Arc;
use std::time::Duration;

/// Why `get_or_load` produced no value. None of these is cached: the next call loads again.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// The loader's own error, shared by every caller that waited for that load.
    #[error("loading the {bucket} entry failed: {error}")]
    Failed {
        /// The bucket of the key.
        bucket: Bucket,
        /// The loader's error.
        error: Arc<E>,
    },
    /// The loader panicked; only the calls waiting for it fail, the cache stays usable.
    #[error("the loader for a {bucket} entry panicked; nothing was cached")]
    Panicked {
        /// The bucket of the key.
        bucket: Bucket,
    },
    /// The loader ran past the bucket's load timeout ([`crate::BucketConfig::load_timeout`]) and
    /// was dropped.
    #[error("the loader for a {bucket} entry did not finish within {after:?}; nothing was cached")]
    TimedOut {
        /// The bucket of the key.
        bucket: Bucket,
        /// The load timeout that ran out.
        after: Duration,
    },
    /// The key holds (or is being loaded as) a different type: two call sites share a key.
    #[error("the {bucket} key is cached with a different type than {expected}; use distinct keys per type")]
    TypeMismatch {
        /// The bucket of the key.
        bucket: Bucket,
        /// The type this call asked for.
        expected: &'static str,
    },
    /// The key is empty or too long, or the bucket is not configured in this cache.
    #[error(transparent)]
    InvalidName(#[from] NameError),
}

impl<E> LoadError<E> {
    /// The loader's error, when that is what failed.
    pub fn loader_error(&self) -> Option<&E> {
        match self {
            LoadError::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        match self {
            LoadError::Failed { bucket, error } => LoadError::Failed { bucket: *bucket, error: error.clone() },
            LoadError::Panicked { bucket } => LoadError::Panicked { bucket: *bucket },
            LoadError::TimedOut { bucket, after } => LoadError::TimedOut { bucket: *bucket, after: *after },
            LoadError::TypeMismatch { bucket, expected } => LoadError::TypeMismatch { bucket: *bucket, expected },
            LoadError::InvalidName(e) => LoadError::InvalidName(e.clone()),
        }
    }
}
