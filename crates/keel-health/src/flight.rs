//! Single-flight: concurrent callers share one in-flight run; nothing is kept once it finishes.

use futures::future::{BoxFuture, FutureExt, Shared};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use tokio::task::AbortHandle;

/// The shared run stopped without an answer: it panicked, or the runtime is shutting down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared run stopped before answering: {0}")]
pub struct FlightError(String);

type Flight<T> = Shared<BoxFuture<'static, Result<T, FlightError>>>;

/// Collapses concurrent runs of one operation into one.
///
/// The run is spawned on its own task, so it keeps going (bounded by its own deadline) when the
/// caller that started it goes away, and callers that arrive while it runs await the same
/// result. A caller arriving after it finished starts a new run: results are not cached.
pub struct SingleFlight<T> {
    slot: Mutex<Option<(AbortHandle, Flight<T>)>>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self { slot: Mutex::new(None) }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// No run in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Joins the run in flight, or starts one with `start` if none is.
    pub async fn run<F, Fut>(&self, start: F) -> Result<T, FlightError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let flight = {
            // Held only to swap the slot, never across an await; a poisoned lock still holds a
            // valid Option, so recovering it is safe.
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                // `is_finished` rather than `Shared::peek`: a run whose callers all left is
                // finished yet never polled to completion, and its answer is already stale.
                Some((task, flight)) if !task.is_finished() => flight.clone(),
                _ => {
                    let handle = tokio::spawn(start());
                    let task = handle.abort_handle();
                    let flight = async move { handle.await.map_err(|e| FlightError(e.to_string())) }.boxed().shared();
                    *slot = Some((task, flight.clone()));
                    flight
                }
            }
        };
        flight.await
    }
}
