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

    /// The share of all cores' time since `self` spent working, 0.0 to 1.0.
    pub(crate) fn busy_since(self) -> Option<f64> {
        let now = Self::now()?;
        let total = now.total.checked_sub(self.total)?;
        let idle = now.idle.checked_sub(self.idle)?;
        (total > 0).then(|| 1.0 - idle as f64 / total as f64)
    }
}
