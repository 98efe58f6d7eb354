//! Keeping a process's incident switches current: re-read on SIGHUP, and the switches file
//! (`KEEL_SWITCHES_FILE`) watched for changes, so an operator's edit (or a ConfigMap update)
//! applies within a poll interval even if nobody sends the signal. keel-worker and keel-api
//! both call [`watch_switches`].

use keel_queue::SwitchBoard;
use std::time::Duration;

/// How often the switches file is re-read for changes. A second: an incident switch should
/// apply about as fast as a claim loop ticks, and reading a few bytes a second costs nothing.
pub const SWITCHES_FILE_POLL: Duration = Duration::from_secs(1);

/// Spawns the watch for the life of the process: every SIGHUP re-reads the environment's
/// switches and the file; the file is also re-read whenever its text changes. A bad reading
/// is logged and the previous switches stay in force.
/// Must be called inside the runtime. The SIGHUP handler is in place when it returns, so a
/// signal sent right after start never falls to the default action (ending the process).
pub fn watch_switches(board: SwitchBoard) {
    #[cfg(unix)]
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; only the switches file's changes apply");
            None
        }
    };
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(SWITCHES_FILE_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await.is_some(),
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hangup = std::future::pending::<bool>();
            tokio::select! {
                got = hangup => {
                    if !got {
                        return;
                    }
                    report("sighup", board.reload(&keel_config::EnvSource).map(|()| true), &board);
                }
                _ = poll.tick(), if board.file().is_some() => {
                    report("file_changed", board.reload_file_if_changed(), &board);
                }
            }
        }
    });
}

fn report(trigger: &str, outcome: Result<bool, keel_config::Problems>, board: &SwitchBoard) {
    let file = board.file().map(|p| p.display().to_string());
    match outcome {
        Ok(false) => {}
        Ok(true) => {
            let active: Vec<String> = board.current().active().map(str::to_owned).collect();
            tracing::info!(event = "switches_reloaded", trigger, ?active, file, "incident switches re-read");
        }
        Err(p) => tracing::error!(event = "switches_not_reloaded", trigger, file, problems = %p,
            "incident switches not reloaded; keeping the previous ones"),
    }
}
