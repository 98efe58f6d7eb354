//! A finding: which lint, how serious, which object, why it matters and how to fix it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Every lint's name, for validating suppressions.
pub(crate) const LINTS: [&str; 9] = [
    "duplicate_index",
    "unused_index",
    "unindexed_foreign_key",
    "security_definer_view",
    "rls_initplan",
    "multiple_permissive_policies",
    "rls_disabled_tenant_table",
    "no_primary_key",
    "function_search_path_mutable",
];

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub(crate) lint: &'static str,
    pub(crate) level: Level,
    /// A stable name for the object, used by suppressions: `schema.table`, `schema.index`,
    /// `schema.table.constraint`, `schema.table.policy`, `schema.table/role/ACTION`,
    /// `schema.function(args)`.
    pub(crate) object: String,
    /// What was found, in one sentence.
    pub(crate) detail: String,
    /// Why it matters.
    pub(crate) why: String,
    /// The fix, usually SQL to run.
    pub(crate) fix: String,
    /// Structured facts for scripts (sizes, column lists, policy texts).
    pub(crate) metadata: serde_json::Value,
}

impl Finding {
    pub(crate) fn new(lint: &'static str, level: Level, object: impl Into<String>) -> Self {
        Self {
            lint,
            level,
            object: object.into(),
            detail: String::new(),
            why: String::new(),
            fix: String::new(),
            metadata: serde_json::Value::Null,
        }
    }
    pub(crate) fn detail(mut self, s: impl Into<String>) -> Self {
        self.detail = s.into();
        self
    }
    pub(crate) fn why(mut self, s: impl Into<String>) -> Self {
        self.why = s.into();
        self
    }
    pub(crate) fn fix(mut self, s: impl Into<String>) -> Self {
        self.fix = s.into();
        self
    }
    pub(crate) fn metadata(mut self, v: serde_json::Value) -> Self {
        self.metadata = v;
        self
    }
}

/// An identifier as SQL needs it: bare when it is plain lower case, quoted otherwise.
pub(crate) fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}
