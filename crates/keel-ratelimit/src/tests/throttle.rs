//! Log throttling: one line per interval, whatever the rate of failures.

use crate::throttle::LogThrottle;

#[test]
fn one_line_per_interval() {
    let t = LogThrottle::new(60);
    assert!(t.allow(0), "the first failure is logged");
    assert!((1..60).all(|now| !t.allow(now)), "the rest of the interval is quiet");
    assert!(t.allow(60), "the next interval logs again");
    assert!(!t.allow(61));
    assert!(t.allow(1_000));
}
