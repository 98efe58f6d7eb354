//! How busy the machine's cores were over a stretch of a run, from the kernel's `/proc/stat`:
//! a queue that leaves cores idle is waiting (round trips, commits), one that keeps them busy
//! is doing work, and the two call for different fixes (issue #19).

/// The kernel's cumulative CPU time counters at one moment (Linux only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuTimes {
    work: u64,
    total: u64,
}

impl CpuTimes {
    /// The counters now, or `None` where `/proc/stat` cannot be read (not Linux).
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        Self::parse(line)
    }

    /// `cpu  user nice system idle iowait irq softirq steal …`: work is user, nice, system, irq
    /// and softirq. Idle and iowait are time not working; steal is time the hypervisor gave
    /// to another guest, so a noisy neighbour is not counted as this run's work.
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().ok()).collect::<Option<_>>()?;
        let at = |i: usize| f.get(i).copied().unwrap_or(0);
        let work = at(0) + at(1) + at(2) + at(5) + at(6);
        let total = (0..8).map(at).sum();
        Some(Self { work, total })
    }

    /// How busy the cores were since `self`.
    pub(crate) fn busy_since(self) -> Option<Busy> {
        let now = Self::now()?;
        let total = now.total.checked_sub(self.total)?;
        let work = now.work.checked_sub(self.work)?;
        (total > 0).then(|| Busy { share: work as f64 / total as f64, core_secs: work as f64 / USER_HZ })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_and_idle_are_not_work() {
        let a = CpuTimes::parse("cpu  100 0 50 800 10 0 5 35 0 0").expect("parses");
        let b = CpuTimes::parse("cpu  160 0 70 880 10 0 10 115 0 0").expect("parses");
        // 85 ticks of work (60 user, 20 system, 5 softirq), 80 idle, 80 stolen by the host.
        assert_eq!((b.work - a.work, b.total - a.total), (85, 245));
        assert!(CpuTimes::parse("cpu  x 1 2").is_none(), "a counter it cannot read is no reading");
    }
}
