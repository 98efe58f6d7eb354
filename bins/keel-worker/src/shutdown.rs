//! Turning SIGTERM and Ctrl-C into a cancellation token every task can watch (used by both
//! binaries: keel-api runs the worker too, so the process lifecycle lives here).

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or Ctrl-C.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Re-reads the incident switches from the environment on every SIGHUP, so an operator can
/// pause scheduled work without a restart. A bad value keeps the previous switches and is logged.
pub fn reload_on_hup(switches: keel_queue::SwitchBoard) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; switches are read at start only");
            return;
        };
        while hup.recv().await.is_some() {
            match switches.reload(&keel_config::EnvSource) {
                Ok(()) => {
                    let active: Vec<String> = switches.current().active().map(str::to_owned).collect();
                    tracing::info!(event = "switches_reloaded", ?active, "incident switches re-read");
                }
                Err(p) => tracing::error!(problems = %p, "incident switches not reloaded; keeping the previous ones"),
            }
        }
    });
}
