//! The layer table of docs/architecture.md ("Which crate may depend on which"), read into rules
//! tidy can check against each manifest. The table stays prose for people; this reads the few
//! phrases it uses, and fails on a row it cannot read rather than guess.

use std::collections::{BTreeMap, BTreeSet};

/// What one row allows its crates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    /// The row's label: `L0`, `bins`, `dev`, ...
    pub(crate) layer: String,
    /// Our crates this row's crates may depend on (normal dependencies).
    pub(crate) allowed: BTreeSet<String>,
    /// May depend on any of our crates.
    pub(crate) anything: bool,
    /// This row's crates may only ever be dev-dependencies of others.
    pub(crate) dev_only: bool,
    /// Every dependency on our crates must be optional (behind a feature).
    pub(crate) behind_features: bool,
}

/// crate name -> its row's rule.
pub(crate) type Layers = BTreeMap<String, Rule>;

const HEADING: &str = "## Which crate may depend on which";

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// `L2` -> 2.
fn rank(label: &str) -> Option<u32> {
    label.strip_prefix('L')?.parse().ok()
}

/// The `Lx` or `Lx–Ly` ranges named in `text` (en dash or hyphen).
fn ranges(text: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ',' || c == ';').collect();
    for w in words {
        let mut ends = w.split(['–', '-']);
        let (Some(a), b) = (ends.next().and_then(rank), ends.next()) else { continue };
        match b {
            None => out.push((a, a)),
            Some(b) => {
                if let Some(b) = rank(b) {
                    out.push((a, b));
                }
            }
        }
    }
    out
}

/// Reads the table; an error names the row that could not be read.
pub(crate) fn parse(doc: &str) -> Result<Layers, String> {
    let Some(start) = doc.find(HEADING) else { return Err(format!("docs/architecture.md has no {HEADING:?}")) };
    let rows: Vec<Vec<String>> = doc[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.trim_start().starts_with('|'))
        .take_while(|l| l.trim_start().starts_with('|'))
        .map(|l| l.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect())
        .collect();
    // Header and separator rows first.
    let rows: Vec<&Vec<String>> = rows.iter().skip(2).collect();
    let mut by_rank: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for row in &rows {
        if let Some(r) = row.first().and_then(|l| rank(l)) {
            by_rank.entry(r).or_default().extend(backticked(&row[1]));
        }
    }
    let libraries: BTreeSet<String> = by_rank.values().flatten().cloned().collect();
    let mut layers = Layers::new();
    let mut edges: Vec<(String, String)> = Vec::new();
    for row in rows {
        let [layer, crates, rule] = row.as_slice() else {
            return Err(format!("layer table row {row:?} does not have 3 columns"));
        };
        let mut r = Rule { layer: layer.clone(), ..Rule::default() };
        let lower = rule.to_lowercase();
        let mut understood = false;
        for (a, b) in ranges(rule) {
            understood = true;
            for n in a..=b {
                r.allowed.extend(by_rank.get(&n).into_iter().flatten().cloned());
            }
        }
        if lower.contains("nothing of ours") {
            understood = true;
        }
        if lower.contains("any library") {
            understood = true;
            r.allowed.extend(libraries.iter().cloned());
        }
        if lower.contains("anything") {
            understood = true;
            r.anything = true;
        }
        r.dev_only = lower.contains("only as a dev-dependency");
        r.behind_features = lower.contains("behind") && lower.contains("feature");
        // "`a` and `b` use `c` ...": explicit edges between crates of one row.
        for clause in rule.split(';') {
            let split = clause.split_once(" uses ").or_else(|| clause.split_once(" use "));
            if let Some((from, to)) = split {
                let to = backticked(to).into_iter().next();
                for f in backticked(from) {
                    if let Some(t) = &to {
                        understood = true;
                        edges.push((f, t.clone()));
                    }
                }
            }
        }
        if !understood {
            return Err(format!("layer table row {layer:?}: cannot read the rule {rule:?}"));
        }
        for c in backticked(crates) {
            if layers.insert(c.clone(), r.clone()).is_some() {
                return Err(format!("{c} appears twice in the layer table"));
            }
        }
    }
    for (from, to) in edges {
        match layers.get_mut(&from) {
            Some(r) => {
                r.allowed.insert(to);
            }
            None => return Err(format!("the layer table says {from} uses {to}, but {from} has no row")),
        }
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "
## Which crate may depend on which

| layer | crates | may depend on |
|---|---|---|
| L0 | `a`, `b` | nothing of ours |
| L1 | `c` | L0 |
| L2 | `d` | L0–L1 |
| bins | `w`, `x` | any library; `x` uses `w` for the embedded worker |
| dev | `t` | L0-L1, only as a dev-dependency |
| bench | `z` | anything, behind per-family features |
| example | `e` | any library |

## Next
";

    #[test]
    fn every_phrase_of_the_table_is_read() {
        let l = parse(TABLE).unwrap();
        let allowed = |c: &str| l[c].allowed.iter().cloned().collect::<Vec<_>>();
        assert!(allowed("a").is_empty());
        assert_eq!(allowed("c"), ["a", "b"]);
        assert_eq!(allowed("d"), ["a", "b", "c"]);
        assert_eq!(allowed("w"), ["a", "b", "c", "d"]);
        assert_eq!(allowed("x"), ["a", "b", "c", "d", "w"]);
        assert!(l["t"].dev_only && !l["c"].dev_only);
        assert_eq!(allowed("t"), ["a", "b", "c"]);
        assert!(l["z"].anything && l["z"].behind_features);
        assert_eq!(l["d"].layer, "L2");
        // An example (a host service) may use every library, but never a binary.
        assert_eq!(allowed("e"), ["a", "b", "c", "d"]);
        assert!(!l["e"].anything && !l["e"].dev_only);
    }

    #[test]
    fn an_unreadable_row_is_an_error_not_a_guess() {
        let bad = TABLE.replace("| L1 | `c` | L0 |", "| L1 | `c` | whatever it needs |");
        assert!(parse(&bad).unwrap_err().contains("cannot read the rule"));
        let twice = TABLE.replace("| L1 | `c` |", "| L1 | `c`, `a` |");
        assert!(parse(&twice).unwrap_err().contains("a appears twice"));
    }
}
