//! How busy the machine's cores were over a stretch of a run, from the kernel's `/proc/stat`:
//! a queue that leaves cores idle is waiting (round trips, commits), one that keeps them busy
//! is doing work, and the two call for different fixes (issue #19).

/// The kernel's cumulative CPU time counters at one moment (Linux only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTimes {
    idle: u64,
    total: u64,
}

impl CpuTimes {
    /// The counters now, or `None` where `/proc/stat` cannot be read (not Linux).
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let f: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal: idle and iowait are time not working.
        let idle = f.get(3)? + f.get(4).copied().unwrap_or(0);
        let total = f.iter().take(8).sum();
        Some(Self { idle, total })
    }

    /// How busy the cores were since `self`.
    pub(crate) fn busy_since(self) -> Option<Busy> {
        let now = Self::now()?;
        let total = now.total.checked_sub(self.total)?;
        let idle = now.idle.checked_sub(self.idle)?;
        (total > 0)
            .then(|| Busy { share: 1.0 - idle as f64 / total as f64, core_secs: (total - idle) as f64 / USER_HZ })
    }
}

/// The kernel's unit in `/proc/stat`: 1/100 s on every Linux architecture (`USER_HZ`, fixed
/// for user space whatever the kernel's own tick).
const USER_HZ: f64 = 100.0;

/// What the cores did over a stretch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Busy {
    /// The share of all cores' time spent working, 0.0 to 1.0.
    pub(crate) share: f64,
    /// Core-seconds of work, all processes together (10 ms resolution).
    pub(crate) core_secs: f64,
}
