//! Restoring a backup into the other backend (SQLite ↔ PostgreSQL): the way to move a
//! deployment from the embedded default to production and back. Each column's value is
//! converted between the two backends' conventions (keel-storage's): UUIDs are `uuid` or
//! hyphenated TEXT, times `timestamptz` or INTEGER unix milliseconds, booleans `boolean` or
//! INTEGER 0/1, JSON `jsonb` or TEXT. The PostgreSQL side's declared types decide the
//! conversion (SQLite's INTEGER alone cannot tell a time from a count), and the SQLite side's
//! declared type must have the matching affinity. A type outside these conventions is refused
//! before anything is written, naming the table and column; a value that does not fit its
//! column is refused naming the row. Sealed job values are ciphertext in a JSON string: they
//! pass through unchanged, bound to the job's id and kind as before, so the same key opens them.

use super::manifest::Column;
use crate::output::OpsError;
use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

/// What a column holds, in both backends' terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Uuid,
    Time,
    Bool,
    Int,
    Float,
    Json,
}

impl Kind {
    /// A PostgreSQL type as `format_type` prints it.
    fn of_postgres(ty: &str) -> Option<Kind> {
        let base = ty.split('(').next().unwrap_or(ty).trim();
        Some(match base {
            "text" | "character varying" | "character" | "citext" | "name" => Kind::Text,
            "uuid" => Kind::Uuid,
            "timestamp with time zone" => Kind::Time,
            "boolean" => Kind::Bool,
            "smallint" | "integer" | "bigint" => Kind::Int,
            "double precision" | "real" => Kind::Float,
            "jsonb" | "json" => Kind::Json,
            _ => return None,
        })
    }

    /// Whether an SQLite declared type has the affinity this kind is stored with.
    fn fits_sqlite(self, declared: &str) -> bool {
        let d = declared.to_ascii_uppercase();
        match self {
            Kind::Time | Kind::Bool | Kind::Int => d.contains("INT"),
            Kind::Text | Kind::Uuid | Kind::Json => d.contains("TEXT") || d.contains("CHAR") || d.contains("CLOB"),
            Kind::Float => d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB"),
        }
    }

    fn sqlite_convention(self) -> &'static str {
        match self {
            Kind::Time => "INTEGER (unix milliseconds)",
            Kind::Bool => "INTEGER (0 or 1)",
            Kind::Int => "INTEGER",
            Kind::Text => "TEXT",
            Kind::Uuid => "TEXT (hyphenated)",
            Kind::Json => "TEXT (JSON)",
            Kind::Float => "REAL",
        }
    }
}

/// Which way rows travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    PostgresToSqlite,
    SqliteToPostgres,
}

/// A column of the database restored into: its name, declared type and whether it takes NULL.
#[derive(Debug, Clone)]
pub(crate) struct TargetColumn {
    pub(crate) name: String,
    pub(crate) ty: String,
    pub(crate) nullable: bool,
}

#[derive(Debug)]
struct Conv {
    name: String,
    kind: Kind,
    nullable: bool,
}

/// How to rewrite one table's rows for the other backend.
#[derive(Debug)]
pub(crate) struct Plan {
    table: String,
    file: String,
    direction: Direction,
    columns: Vec<Conv>,
}

/// Matches the backup's columns (with the source backend's types) to the target's, or says
/// precisely why the table cannot move.
pub(crate) fn plan(
    direction: Direction,
    table: &str,
    file: &str,
    source: &[Column],
    target: &[TargetColumn],
) -> Result<Plan, OpsError> {
    if source.is_empty() {
        return Err(OpsError::failed(format!(
            "{table}: this backup records no column types (it was taken by an older keel-ops, format keel-backup/2), so it restores only into the backend it came from; take a new backup with this keel-ops"
        )));
    }
    let missing: Vec<&str> =
        source.iter().filter(|c| !target.iter().any(|t| t.name == c.name)).map(|c| c.name.as_str()).collect();
    let extra: Vec<&str> =
        target.iter().filter(|t| !source.iter().any(|c| c.name == t.name)).map(|t| t.name.as_str()).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(OpsError::failed(format!(
            "{table}: the backup's columns differ from the database's (only in the backup: [{}]; only in the database: [{}]); both must be at the same schema",
            missing.join(", "),
            extra.join(", ")
        )));
    }
    let mut columns = Vec::with_capacity(target.len());
    for t in target {
        let Some(s) = source.iter().find(|c| c.name == t.name) else { continue };
        let (pg_type, sqlite_type) = match direction {
            Direction::PostgresToSqlite => (&s.ty, &t.ty),
            Direction::SqliteToPostgres => (&t.ty, &s.ty),
        };
        let kind = Kind::of_postgres(pg_type).ok_or_else(|| {
            OpsError::failed(format!(
                "{table}.{}: PostgreSQL type {pg_type} has no SQLite counterpart in Keel's conventions (uuid, text, timestamptz, boolean, integers, double precision, jsonb); leave this table out (backup export --tables) and move it another way",
                t.name
            ))
        })?;
        if !kind.fits_sqlite(sqlite_type) {
            return Err(OpsError::failed(format!(
                "{table}.{}: PostgreSQL {pg_type} is stored in SQLite as {}, but the SQLite column is declared {sqlite_type:?}",
                t.name,
                kind.sqlite_convention()
            )));
        }
        columns.push(Conv { name: t.name.clone(), kind, nullable: t.nullable });
    }
    Ok(Plan { table: table.to_owned(), file: file.to_owned(), direction, columns })
}

impl Plan {
    /// One exported row (a JSON object) rewritten for the target backend; `row` counts from 1.
    pub(crate) fn convert(&self, line: &str, row: u64) -> Result<String, OpsError> {
        let at = || format!("{} row {row} ({} line {row})", self.table, self.file);
        let mut obj: Map<String, Value> =
            serde_json::from_str(line).map_err(|e| OpsError::failed(format!("{}: not a JSON object: {e}", at())))?;
        if let Some(k) = obj.keys().find(|k| !self.columns.iter().any(|c| &c.name == *k)) {
            return Err(OpsError::failed(format!("{}: column {k:?} is not in the database's table", at())));
        }
        for c in &self.columns {
            let v = obj
                .remove(&c.name)
                .ok_or_else(|| OpsError::failed(format!("{}: column {:?} is missing from the row", at(), c.name)))?;
            let converted = self
                .value(c, v)
                .map_err(|why| OpsError::failed(format!("{}, column {}: {why}; nothing was restored", at(), c.name)))?;
            obj.insert(c.name.clone(), converted);
        }
        Ok(Value::Object(obj).to_string())
    }

    fn value(&self, c: &Conv, v: Value) -> Result<Value, String> {
        match (self.direction, c.kind, v) {
            // A JSON column holding the JSON value null (not SQL NULL) in a NOT NULL column.
            (Direction::PostgresToSqlite, Kind::Json, Value::Null) if !c.nullable => {
                Ok(Value::String("null".to_owned()))
            }
            (_, _, Value::Null) => Ok(Value::Null),
            (Direction::PostgresToSqlite, Kind::Time, Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Value::from(t.timestamp_millis()))
                .map_err(|e| format!("{s:?} is not a timestamp SQLite can hold: {e}")),
            (Direction::SqliteToPostgres, Kind::Time, Value::Number(n)) => n
                .as_i64()
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true)))
                .ok_or_else(|| format!("{n} is not a time in unix milliseconds")),
            (Direction::PostgresToSqlite, Kind::Bool, Value::Bool(b)) => Ok(Value::from(u8::from(b))),
            (Direction::SqliteToPostgres, Kind::Bool, Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(Value::Bool(false)),
                Some(1) => Ok(Value::Bool(true)),
                _ => Err(format!("{n} is not a boolean (0 or 1)")),
            },
            (Direction::PostgresToSqlite, Kind::Json, v) => Ok(Value::String(v.to_string())),
            (Direction::SqliteToPostgres, Kind::Json, Value::String(s)) => {
                serde_json::from_str(&s).map_err(|e| format!("the text is not JSON: {e}"))
            }
            (_, Kind::Int, Value::Number(n)) if n.is_i64() => Ok(Value::Number(n)),
            (_, Kind::Float, Value::Number(n)) => Ok(Value::Number(n)),
            (_, Kind::Text | Kind::Uuid, Value::String(s)) => Ok(Value::String(s)),
            (_, kind, v) => Err(format!("{} does not fit a {kind:?} column", short(&v))),
        }
    }
}

/// A value for an error message, cut short.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column { name: name.to_owned(), ty: ty.to_owned() }
    }
    fn target(name: &str, ty: &str, nullable: bool) -> TargetColumn {
        TargetColumn { name: name.to_owned(), ty: ty.to_owned(), nullable }
    }

    #[test]
    fn postgres_rows_become_sqlite_rows_and_back() {
        let pg = [
            col("id", "uuid"),
            col("at", "timestamp with time zone"),
            col("ok", "boolean"),
            col("doc", "jsonb"),
            col("n", "bigint"),
            col("f", "double precision"),
            col("note", "text"),
        ];
        let lite = [
            target("id", "TEXT", false),
            target("at", "INTEGER", false),
            target("ok", "INTEGER", false),
            target("doc", "TEXT", false),
            target("n", "INTEGER", false),
            target("f", "REAL", false),
            target("note", "TEXT", true),
        ];
        let p = plan(Direction::PostgresToSqlite, "t", "t.jsonl", &pg, &lite).unwrap();
        let line = r#"{"id":"0b7e0c9e-1c1a-4c53-9d51-0f0e6d1c2b3a","at":"2026-01-02T03:04:05.678901+01:00","ok":true,"doc":{"b":[1,"x"],"a":null},"n":9007199254740993,"f":0.1,"note":null}"#;
        let out: Value = serde_json::from_str(&p.convert(line, 1).unwrap()).unwrap();
        assert_eq!(out["at"], 1767319445678i64, "floored to milliseconds, in UTC");
        assert_eq!(out["ok"], 1);
        assert_eq!(out["doc"], r#"{"a":null,"b":[1,"x"]}"#);
        assert_eq!(out["n"], 9007199254740993i64);
        assert_eq!(out["note"], Value::Null);

        let lite_src: Vec<Column> = lite.iter().map(|t| col(&t.name, &t.ty)).collect();
        let pg_target: Vec<TargetColumn> = pg.iter().map(|c| target(&c.name, &c.ty, c.name == "note")).collect();
        let back = plan(Direction::SqliteToPostgres, "t", "t.jsonl", &lite_src, &pg_target).unwrap();
        let again: Value = serde_json::from_str(&back.convert(&out.to_string(), 1).unwrap()).unwrap();
        assert_eq!(again["at"], "2026-01-02T02:04:05.678Z");
        assert_eq!(again["ok"], true);
        assert_eq!(again["doc"], serde_json::json!({"a": null, "b": [1, "x"]}));
    }

    #[test]
    fn values_and_types_that_do_not_fit_are_refused_by_name() {
        let e =
            plan(Direction::PostgresToSqlite, "t", "f", &[col("a", "inet")], &[target("a", "TEXT", true)]).unwrap_err();
        assert!(e.message.contains("t.a") && e.message.contains("inet"), "{e}");
        let e = plan(Direction::SqliteToPostgres, "t", "f", &[col("a", "TEXT")], &[target("a", "boolean", true)])
            .unwrap_err();
        assert!(e.message.contains("INTEGER (0 or 1)") && e.message.contains("\"TEXT\""), "{e}");
        let e =
            plan(Direction::SqliteToPostgres, "t", "f", &[col("a", "TEXT")], &[target("b", "text", true)]).unwrap_err();
        assert!(e.message.contains("only in the backup: [a]") && e.message.contains("only in the database: [b]"));
        let e = plan(Direction::SqliteToPostgres, "t", "f", &[], &[target("b", "text", true)]).unwrap_err();
        assert!(e.message.contains("keel-backup/2"), "{e}");

        let p = plan(
            Direction::SqliteToPostgres,
            "t",
            "t.jsonl",
            &[col("ok", "INTEGER")],
            &[target("ok", "boolean", false)],
        )
        .unwrap();
        let e = p.convert(r#"{"ok":2}"#, 7).unwrap_err();
        assert!(e.message.contains("row 7") && e.message.contains("column ok") && e.message.contains("0 or 1"), "{e}");
        let e = p.convert(r#"{"ok":1,"x":1}"#, 1).unwrap_err();
        assert!(e.message.contains("\"x\""), "{e}");
    }
}
