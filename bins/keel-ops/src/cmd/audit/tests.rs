//! Unit tests of the audit's pure parts: the node-tree reader, suppressions, sizes.

use super::args::parse_size;
use super::finding::{Finding, Level};
use super::node_tree::{calls, parse, Value};
use super::suppress::{apply, glob, parse as parse_suppressions};
use chrono::NaiveDate;

// Trees as PostgreSQL 15 stores them (trimmed of fields the walker ignores).
const BARE: &str = "{OPEXPR :opno 2972 :args ({VAR :varno 1 :varattno 2 :varlevelsup 0 :location 29} {COERCEVIAIO :arg {FUNCEXPR :funcid 2077 :funcresulttype 25 :args ({CONST :consttype 25 :constlen -1 :constbyval false :constisnull false :location 54 :constvalue 15 [ 60 0 0 0 107 101 101 108 46 111 114 103 95 105 100 ]}) :location 38} :resulttype 2950} ) :location 36}";
const WRAPPED: &str = "{OPEXPR :opno 2972 :args ({VAR :varno 1 :varattno 3 :varlevelsup 0} {SUBLINK :subLinkType 4 :subLinkId 0 :testexpr <> :operName <> :subselect {QUERY :commandType 1 :rtable <> :jointree {FROMEXPR :fromlist <> :quals <>} :targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 16541 :args <> :location 47} :resno 1 :resname uid :resjunk false})} :location 39}) :location 37}";
const CORRELATED: &str = "{SUBLINK :subLinkType 0 :testexpr <> :subselect {QUERY :commandType 1 :rtable ({RANGETBLENTRY :alias {ALIAS :aliasname t2 :colnames <>} :eref {ALIAS :aliasname t2 :colnames (\"id\" \"org_id\")} :rtekind 0 :relkind r :selectedCols (b 8 10)}) :jointree {FROMEXPR :fromlist ({RANGETBLREF :rtindex 1}) :quals {BOOLEXPR :boolop and :args ({OPEXPR :args ({VAR :varno 1 :varlevelsup 0} {VAR :varno 1 :varlevelsup 1})} {OPEXPR :args ({VAR :varno 1 :varlevelsup 0} {FUNCEXPR :funcid 16541 :args <>})})}} :targetList ({TARGETENTRY :expr {CONST :consttype 23 :constvalue 4 [ 1 0 0 0 0 0 0 0 ]} :resname ?column?})} :location 29}";

#[test]
fn node_tree_reads_fields_lists_and_escapes() {
    let v = parse(r#"{ALIAS :aliasname my\ table :colnames ("a\(b" "c") :x <>}"#).unwrap();
    let Value::Node(n) = v else { panic!("not a node") };
    assert_eq!(n.tag, "ALIAS");
    assert_eq!(n.field("aliasname"), Some(&[Value::Atom("my table".into())][..]));
    assert_eq!(
        n.field("colnames"),
        Some(&[Value::List(vec![Value::Atom("\"a(b\"".into()), Value::Atom("\"c\"".into())])][..])
    );
    assert_eq!(n.field("x"), Some(&[Value::Atom("<>".into())][..]));
    assert!(parse(&BARE.replace("[ 60", "[ 60 {")).is_err(), "unbalanced braces are an error, not a guess");
    assert!(parse("{A :b (1 2").is_err());
}

#[test]
fn bare_call_is_per_row() {
    let c = calls(&parse(BARE).unwrap());
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].funcid, c[0].per_row), (2077, true));
}

#[test]
fn call_in_uncorrelated_subselect_is_evaluated_once() {
    let c = calls(&parse(WRAPPED).unwrap());
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].funcid, c[0].per_row), (16541, false));
}

#[test]
fn call_in_correlated_subselect_is_per_row() {
    let c = calls(&parse(CORRELATED).unwrap());
    assert_eq!(c.len(), 1);
    assert!(c[0].per_row, "the EXISTS references the outer row, so it runs per row: {c:?}");
}

#[test]
fn call_in_the_test_expression_of_in_subselect_is_per_row() {
    let tree = "{SUBLINK :subLinkType 2 :testexpr {FUNCEXPR :funcid 7 :args <>} :subselect {QUERY :targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 8 :args <>}})}}";
    let c = calls(&parse(tree).unwrap());
    let per_row: Vec<_> = c.iter().map(|c| (c.funcid, c.per_row)).collect();
    assert_eq!(per_row, vec![(7, true), (8, false)]);
}

#[test]
fn nested_subselect_inside_a_self_contained_one_is_once() {
    // The inner sub-select refers to the middle query (level 1), not the policy's table.
    let tree = "{SUBLINK :testexpr <> :subselect {QUERY :quals {SUBLINK :testexpr <> :subselect {QUERY :quals {OPEXPR :args ({VAR :varlevelsup 1} {FUNCEXPR :funcid 9 :args <>})}}} :x {VAR :varlevelsup 0}}}";
    let c = calls(&parse(tree).unwrap());
    assert_eq!(c.len(), 1);
    assert!(!c[0].per_row);
}

fn finding(lint: &'static str, object: &str) -> Finding {
    Finding::new(lint, Level::Warn, object)
}

#[test]
fn suppressions_need_a_known_lint_and_a_reason() {
    let ok = "[[suppress]]\nlint = \"no_primary_key\"\nobject = \"public.t\"\nreason = \"log table\"\nexpires = 2030-01-31\n";
    let s = parse_suppressions(ok, "f.toml").unwrap();
    assert_eq!(s[0].expires, NaiveDate::from_ymd_opt(2030, 1, 31));
    let quoted = ok.replace("2030-01-31", "\"2030-01-31\"");
    assert_eq!(parse_suppressions(&quoted, "f.toml").unwrap()[0].expires, NaiveDate::from_ymd_opt(2030, 1, 31));
    let e = parse_suppressions(&ok.replace("no_primary_key", "no_pk"), "f.toml").unwrap_err();
    assert!(e.contains("entry 1") && e.contains("no_pk"), "{e}");
    let e = parse_suppressions(&ok.replace("log table", " "), "f.toml").unwrap_err();
    assert!(e.contains("reason"), "{e}");
    let e = parse_suppressions(&ok.replace("2030-01-31", "\"next year\""), "f.toml").unwrap_err();
    assert!(e.contains("expires"), "{e}");
    let e = parse_suppressions(&format!("{ok}colour = 1\n"), "f.toml").unwrap_err();
    assert!(e.contains("colour"), "{e}");
    let e = parse_suppressions("[[suppress]]\nlint = \"no_primary_key\"\nreason = \"x\"\n", "f.toml").unwrap_err();
    assert!(e.contains("object"), "{e}");
}

#[test]
fn expired_suppressions_stop_suppressing_and_are_listed() {
    let text = "[[suppress]]\nlint = \"no_primary_key\"\nobject = \"public.a\"\nreason = \"r\"\nexpires = 2026-03-01\n\
                [[suppress]]\nlint = \"no_primary_key\"\nobject = \"public.gone\"\nreason = \"r\"\n";
    let rules = parse_suppressions(text, "f").unwrap();
    let before = NaiveDate::from_ymd_opt(2026, 2, 28).unwrap();
    let on = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let a = apply(vec![finding("no_primary_key", "public.a")], &rules, before);
    assert_eq!((a.findings.len(), a.suppressed.len(), a.expired.len()), (0, 1, 0));
    assert_eq!(a.unused.len(), 1, "public.gone matched nothing");
    let a = apply(vec![finding("no_primary_key", "public.a")], &rules, on);
    assert_eq!((a.findings.len(), a.suppressed.len(), a.expired.len()), (1, 0, 1));
    assert_eq!(a.expired[0].object, "public.a");
}

#[test]
fn suppression_matches_lint_and_object_with_wildcards() {
    let rules = parse_suppressions(
        "[[suppress]]\nlint = \"unused_index\"\nobject = \"public.report_*\"\nreason = \"monthly job\"\n",
        "f",
    )
    .unwrap();
    let today = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let a = apply(
        vec![
            finding("unused_index", "public.report_month_idx"),
            finding("duplicate_index", "public.report_month_idx"),
            finding("unused_index", "other.report_month_idx"),
        ],
        &rules,
        today,
    );
    assert_eq!(a.suppressed.len(), 1);
    assert_eq!(a.findings.len(), 2);
    assert!(glob("*.keel_jobs", "public.keel_jobs"));
    assert!(glob("a*b*c", "aXXbYYc") && !glob("a*b*c", "aXXbYY"));
    assert!(glob("*", "") && !glob("x", "xy"));
}

#[test]
fn builtin_suppressions_parse() {
    let s = parse_suppressions(super::suppress::BUILTIN, "builtin").unwrap();
    assert!(s.iter().all(|s| !s.reason.is_empty()));
}

#[test]
fn sizes_parse_like_postgres_prints_them() {
    assert_eq!(parse_size("0"), Ok(0));
    assert_eq!(parse_size("8192"), Ok(8192));
    assert_eq!(parse_size("512kB"), Ok(512 * 1024));
    assert_eq!(parse_size("10MB"), Ok(10 << 20));
    assert_eq!(parse_size("1 GB"), Ok(1 << 30));
    assert!(parse_size("ten").is_err());
    assert!(parse_size("10XB").unwrap_err().contains("unit"));
}
