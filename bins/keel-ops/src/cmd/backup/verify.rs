//! `keel-ops backup verify DIR`: recompute every file's SHA-256 and line count and compare with
//! the manifest; name every file that differs, is missing, or is not in the manifest.

use super::manifest::{self, Manifest};
use crate::output::OpsError;
use crate::progress::Progress;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Problem {
    pub(crate) file: String,
    pub(crate) problem: String,
}

/// The manifest and every problem found (empty when the backup is intact).
pub(crate) fn check(dir: &Path) -> Result<(Manifest, Vec<Problem>), OpsError> {
    let m = manifest::read(dir)?;
    let progress = Progress::stderr();
    let mut problems = Vec::new();
    for t in &m.tables {
        progress.phase(&format!("verifying {}…", t.file));
        let path = dir.join(&t.file);
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                problems.push(Problem { file: t.file.clone(), problem: format!("cannot be read: {e}") });
                continue;
            }
        };
        let mut hash = Sha256::new();
        let mut lines: u64 = 0;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hash.update(&buf[..n]);
                    lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                }
                Err(e) => {
                    problems.push(Problem { file: t.file.clone(), problem: format!("read failed: {e}") });
                    break;
                }
            }
        }
        let sha = format!("{:x}", hash.finalize());
        if sha != t.sha256 {
            problems.push(Problem {
                file: t.file.clone(),
                problem: format!("SHA-256 is {sha}, the manifest says {}: the file was changed or damaged", t.sha256),
            });
        } else if lines != t.rows {
            problems
                .push(Problem { file: t.file.clone(), problem: format!("{lines} rows, the manifest says {}", t.rows) });
        }
    }
    progress.finish();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jsonl") && !m.tables.iter().any(|t| t.file == name) {
                problems.push(Problem { file: name, problem: "is not listed in the manifest".to_owned() });
            }
        }
    }
    Ok((m, problems))
}
