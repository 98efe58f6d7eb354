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

    /// This process's user and system time from `/proc/self/stat`, in the kernel's ticks: a
    /// second, independent count to hold `schedstat`'s against.
    fn stat_ticks() -> u64 {
        let s = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
        let after_comm = s.rsplit(')').next().expect("a comm field");
        after_comm.split_whitespace().skip(11).take(2).map(|v| v.parse::<u64>().expect("a tick count")).sum()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_spends_what_it_burns() {
        let before = Process::This.cpu_time().expect("readable");
        let ticks = stat_ticks();
        // Burn CPU until the counter shows 100 ms (however long a busy machine takes to give
        // them), within a generous deadline: a counter that does not move fails.
        let t = std::time::Instant::now();
        let mut spent = Duration::ZERO;
        while spent < Duration::from_millis(100) && t.elapsed() < Duration::from_secs(20) {
            let mut x = 0u64;
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            spent = Process::This.cpu_time().expect("readable").saturating_sub(before);
        }
        assert!(spent >= Duration::from_millis(100), "the counter moves while a thread burns CPU: {spent:?}");
        let ticks = stat_ticks() - ticks;
        assert!(ticks >= 5, "the kernel's own tick count agrees: {ticks} ticks of 10 ms for {spent:?}");
        assert_eq!(per_job_us(Some(Duration::ZERO), Some(Duration::from_millis(5)), 1_000), Some(5.0));
        assert_eq!(per_job_us(Some(Duration::from_millis(5)), Some(Duration::ZERO), 1_000), None);
    }
}
