//! The command line of `keel-ops db audit`.

use super::finding::Level;
use clap::Args;
use std::path::PathBuf;

/// The per-row functions `rls_initplan` looks for unless `--per-row-function` is given.
pub(crate) const DEFAULT_PER_ROW_FUNCTIONS: [&str; 5] =
    ["auth.uid", "auth.jwt", "auth.role", "auth.email", "current_setting"];

#[derive(Debug, Args)]
#[command(after_help = "\
Lints (level): duplicate_index (warn), unused_index (info), unindexed_foreign_key (warn),
security_definer_view (error), rls_initplan (warn), multiple_permissive_policies (warn),
rls_disabled_tenant_table (error when RLS is off, warn when it is not forced), no_primary_key (info),
function_search_path_mutable (warn for SECURITY DEFINER functions, info otherwise).

Suppressions file (TOML), one [[suppress]] table per entry:
  [[suppress]]
  lint = \"rls_disabled_tenant_table\"
  object = \"public.keel_jobs\"        # exact, or with * wildcards
  reason = \"why this is acceptable\"  # required
  expires = 2026-12-31                # optional; from that day (UTC) it stops suppressing
Keel's own decisions (ops/audit-suppressions.toml) are built in; --no-builtin-suppressions shows them.

Exit status: 0 when no unsuppressed finding is at or above --fail-on, 1 otherwise, 2 for a bad
command line or suppressions file, 3 when the database is unreachable or is not PostgreSQL.")]
pub struct AuditArgs {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding at or above this level remains after suppressions.
    #[arg(long, value_enum, default_value_t = Level::Error)]
    pub fail_on: Level,
    /// A suppressions file (TOML, see below); added to the built-in ones.
    #[arg(long, value_name = "FILE")]
    pub suppress: Option<PathBuf>,
    /// Ignore the suppressions Keel ships for its own tables.
    #[arg(long)]
    pub no_builtin_suppressions: bool,
    /// A column that marks a table as tenant data (repeatable; replaces the default).
    #[arg(long = "tenant-column", value_name = "COLUMN", default_values_t = ["org_id".to_owned()])]
    pub tenant_columns: Vec<String>,
    /// A function whose call in a policy must be wrapped in a sub-select, as `schema.name` or a
    /// bare name for any schema (repeatable; replaces the default list: auth.uid, auth.jwt,
    /// auth.role, auth.email, current_setting).
    #[arg(long = "per-row-function", value_name = "FUNCTION", default_values_t = DEFAULT_PER_ROW_FUNCTIONS.map(str::to_owned))]
    pub per_row_functions: Vec<String>,
    /// Indexes smaller than this are not reported as unused (bytes, or with kB, MB, GB).
    #[arg(long, value_name = "SIZE", default_value = "10MB", value_parser = parse_size)]
    pub unused_index_min_size: u64,
}

/// `10MB`, `512kB`, `0`: sizes as PostgreSQL prints them (powers of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a size; use e.g. 0, 8192, 512kB, 10MB, 1GB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        "tb" | "t" => 1 << 40,
        _ => return Err(format!("unknown unit in {s:?}; use B, kB, MB, GB or TB")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}
