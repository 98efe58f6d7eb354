//! Bench family `telemetry` (being written).

use crate::report::Row;

pub(crate) fn run() -> Result<Vec<Row>, String> {
    Err("not written yet".into())
}
