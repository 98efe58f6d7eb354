//! The CPU time a worker process spends, summed over its threads from the kernel's per-thread
//! `schedstat` (nanoseconds, where `/proc/<pid>/stat` counts 10 ms ticks): on two cores the
//! worker competes with PostgreSQL for the same CPU, so every microsecond a worker spends per
//! job is taken from the database it waits on (issue #19).

use std::time::Duration;

/// A process: this one, or a child by its pid.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Process {
    /// The bench itself (Keel's worker runs in-process).
    This,
    /// A child process (a Node peer).
    Child(u32),
}

impl Process {
    /// Time on a CPU so far, summed over the threads alive now; `None` where the kernel does
    /// not expose it (not Linux, or the process is gone). Threads that exit take their time
    /// with them, so read it over a stretch in which the worker's threads live throughout.
    pub(crate) fn cpu_time(self) -> Option<Duration> {
        let dir = match self {
            Process::This => "/proc/self/task".to_owned(),
            Process::Child(pid) => format!("/proc/{pid}/task"),
        };
        let mut ns: u64 = 0;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            // A thread may exit between the listing and the read: it then counts nothing.
            let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) else { continue };
            ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(ns))
    }
}

/// Microseconds of CPU per job between two readings of one process.
pub(crate) fn per_job_us(from: Option<Duration>, to: Option<Duration>, jobs: u64) -> Option<f64> {
    let spent = to?.checked_sub(from?)?;
    (jobs > 0).then(|| spent.as_secs_f64() * 1e6 / jobs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_spends_what_it_burns() {
        let before = Process::This.cpu_time();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = Process::This.cpu_time().zip(before).and_then(|(a, b)| a.checked_sub(b)).expect("readable twice");
        assert!(spent >= Duration::from_millis(40), "a 50 ms busy loop shows as CPU time, got {spent:?}");
        assert_eq!(per_job_us(Some(Duration::ZERO), Some(Duration::from_millis(5)), 1_000), Some(5.0));
        assert_eq!(per_job_us(Some(Duration::from_millis(5)), Some(Duration::ZERO), 1_000), None);
    }
}
