//! The benchmark families; each module exposes `run() -> Result<Vec<Row>, String>`.

use crate::report::{self, Row};

/// Every family `all` runs, in order. Add new families here.
const FAMILIES: &[(&str, fn() -> Result<Vec<Row>, String>)] = &[];

pub(crate) fn run(name: &str) -> i32 {
    let selected: Vec<_> = FAMILIES.iter().filter(|(n, _)| name == "all" || *n == name).collect();
    if selected.is_empty() {
        let names: Vec<&str> = FAMILIES.iter().map(|(n, _)| *n).collect();
        eprintln!("unknown benchmark {name:?}; choose one of: all, {}", names.join(", "));
        return 2;
    }
    let mut code = 0;
    for (family, f) in selected {
        eprintln!("== bench {family}");
        match f() {
            Ok(rows) => {
                if let Err(e) = report::write(family, &rows) {
                    eprintln!("bench {family}: could not write results: {e}");
                    code = 1;
                }
            }
            Err(e) => {
                eprintln!("bench {family} failed: {e}");
                code = 1;
            }
        }
    }
    code
}
