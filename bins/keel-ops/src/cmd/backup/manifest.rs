//! `manifest.json`: what a backup holds (tables, row counts, SHA-256 of each file) and where it
//! came from (backend, schema version), so it can be verified and restored later.

use crate::output::OpsError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version 3: each table's columns and their types in the backend it came from, so a restore
/// into the other backend can convert every value (version 2 added `schema_versions` per
/// component). Version 2 backups are still read, for restores into the same backend.
pub(crate) const FORMAT: &str = "keel-backup/3";
/// The previous format: no column types, so it restores only into its own backend.
pub(crate) const FORMAT_V2: &str = "keel-backup/2";
pub(crate) const FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) format: String,
    pub(crate) created_at: String,
    pub(crate) backend: String,
    pub(crate) server_version: String,
    /// Each component's version when the snapshot was taken; a restore needs the same.
    pub(crate) schema_versions: super::versions::Versions,
    /// How the snapshot was taken (one transaction, so the tables agree with each other).
    pub(crate) snapshot: String,
    /// In foreign-key order: referenced tables before the tables that reference them.
    pub(crate) tables: Vec<TableEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TableEntry {
    pub(crate) schema: String,
    pub(crate) table: String,
    pub(crate) file: String,
    pub(crate) rows: u64,
    pub(crate) sha256: String,
    /// Every column in each row's JSON object, with its type as the source backend declares it
    /// (PostgreSQL's `format_type`, SQLite's declared type). Empty in a version 2 backup.
    #[serde(default)]
    pub(crate) columns: Vec<Column>,
}

/// One column of a backed-up table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Column {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) ty: String,
}

impl TableEntry {
    pub(crate) fn name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// A file name for a table that is safe on any filesystem: bytes outside `[A-Za-z0-9_-]` are
/// percent-encoded, and the schema and table are joined by a dot.
pub(crate) fn file_name(schema: &str, table: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!("{}.{}.jsonl", enc(schema), enc(table))
}

/// A manifest names files inside its own directory only.
fn plain_file_name(f: &str) -> bool {
    !f.is_empty() && f != "." && f != ".." && !f.contains(['/', '\\']) && f != FILE
}

pub(crate) fn read(dir: &Path) -> Result<Manifest, OpsError> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        OpsError::failed(format!(
            "cannot read {}: {e}. Is {} a keel-ops backup directory?",
            path.display(),
            dir.display()
        ))
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| OpsError::failed(format!("{} is not a valid backup manifest: {e}", path.display())))?;
    if m.format != FORMAT && m.format != FORMAT_V2 {
        return Err(OpsError::failed(format!(
            "{} has format {:?}; this keel-ops reads {FORMAT:?} and {FORMAT_V2:?}",
            path.display(),
            m.format
        )));
    }
    if let Some(t) = m.tables.iter().find(|t| !plain_file_name(&t.file)) {
        return Err(OpsError::failed(format!(
            "{}: table {} names file {:?}, which is not a plain file name in the backup directory",
            path.display(),
            t.name(),
            t.file
        )));
    }
    Ok(m)
}
