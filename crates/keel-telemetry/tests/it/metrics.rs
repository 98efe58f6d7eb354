//! The exposition (written by prometheus-client), parsed back by a strict reader written for
//! this test: HELP and TYPE before samples, valid names, escaped label values, cumulative
//! buckets ending in `+Inf`; labelled families and their series cap; OpenMetrics on request;
//! the pool gauges on a real database.

use keel_telemetry::metrics::{
    register_pool_metrics, Exposition, FamilyDesc, MetricsError, MetricsRegistry, Sample, HTTP_DURATION_BUCKETS,
    HTTP_DURATION_METRIC, OVERFLOW_LABEL,
};
use keel_testkit::{backend_tests, TestDb};
use std::collections::BTreeMap;
use std::time::Duration;

type Labels = Vec<(String, String)>;
type ParsedSample = (String, Labels, f64);

#[derive(Debug, Default)]
struct Family {
    help: Option<String>,
    kind: Option<String>,
    samples: Vec<ParsedSample>,
}

fn unescape(s: &str, quotes: bool) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('"') if quotes => out.push('"'),
                other => panic!("bad escape \\{other:?} in {s:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses `name{labels} value` with quoted, escaped label values.
fn parse_sample(line: &str) -> ParsedSample {
    let name_end = line.find(['{', ' ']).expect("sample line");
    let name = &line[..name_end];
    assert!(valid_name(name), "{name}");
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut r = r;
        loop {
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find("=\"").expect("label=\"");
            let lname = &r[..eq];
            assert!(valid_name(lname), "{lname}");
            let body = &r[eq + 2..];
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.expect("closing quote");
            labels.push((lname.to_owned(), unescape(&body[..end], true)));
            r = &body[end + 1..];
            r = r.strip_prefix(',').unwrap_or(r);
        }
    }
    let value = rest.strip_prefix(' ').expect("space before value");
    let v = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().unwrap_or_else(|_| panic!("value {v:?}")),
    };
    (name.to_owned(), labels, v)
}

fn parse(text: &str) -> BTreeMap<String, Family> {
    assert!(text.ends_with('\n'));
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut order = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# HELP ") {
            let (name, help) = h.split_once(' ').unwrap();
            let f = families.entry(name.to_owned()).or_default();
            assert!(f.help.is_none() && f.samples.is_empty(), "HELP for {name} repeated or after samples");
            f.help = Some(unescape(help, false));
            order.push(name.to_owned());
        } else if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').unwrap();
            let f = families.get_mut(name).expect("TYPE after HELP");
            assert!(f.kind.is_none() && f.samples.is_empty());
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            f.kind = Some(kind.to_owned());
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
            let (name, labels, v) = parse_sample(line);
            // A sample belongs to the family declared last, under its own or a histogram name.
            let family = order.last().expect("sample before any TYPE").clone();
            let f = families.get_mut(&family).unwrap();
            let ok = match f.kind.as_deref() {
                Some("histogram") => {
                    [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")].contains(&name)
                }
                _ => name == family,
            };
            assert!(ok, "sample {name} under family {family}");
            f.samples.push((name, labels, v));
        }
    }
    families
}

#[test]
fn exposition_parses_back_exactly() {
    let reg = MetricsRegistry::new();
    let http = reg.http();
    http.observe("GET", Some("/clients/:id"), 200, Duration::from_millis(3));
    http.observe("GET", Some("/clients/:id"), 201, Duration::from_millis(80));
    http.observe("POST", Some("/q\"uo\\te\nd"), 503, Duration::from_secs(30));
    http.observe("GET", None, 404, Duration::from_micros(10));
    reg.register(
        FamilyDesc::counter(
            "keel_ratelimit_decisions_total",
            "Rate limiter decisions by policy and outcome.",
            &["policy", "outcome"],
        )
        .unwrap(),
        || {
            vec![
                Sample::new(["admin", "allow"], 70.0),
                Sample::new(["admin", "reject"], 3.0),
                Sample::new(["telemetry_ingest", "allow"], 12.0),
            ]
        },
    )
    .unwrap();
    let queue = reg
        .pushed(FamilyDesc::gauge("keel_queue_jobs", "Jobs by queue state.\nSecond \\ line.", &["state"]).unwrap())
        .unwrap();
    queue.set(&["pending"], 4.0).unwrap();
    queue.set(&["dead_letter"], 1.0).unwrap();
    queue.set(&["pending"], 5.0).unwrap();
    let text = reg.render();
    let fams = parse(&text);

    assert_eq!(fams.len(), 3);
    for (name, f) in &fams {
        assert!(f.help.as_deref().is_some_and(|h| !h.is_empty()), "{name} has HELP");
        assert!(f.kind.is_some(), "{name} has TYPE");
    }
    assert_eq!(fams["keel_queue_jobs"].help.as_deref(), Some("Jobs by queue state.\nSecond \\ line."));
    let q = &fams["keel_queue_jobs"].samples;
    assert_eq!(q.len(), 2);
    assert!(q.contains(&("keel_queue_jobs".into(), vec![("state".into(), "pending".into())], 5.0)));
    let rl = &fams["keel_ratelimit_decisions_total"];
    assert_eq!(rl.kind.as_deref(), Some("counter"));
    assert_eq!(rl.samples.len(), 3);

    let h = &fams[HTTP_DURATION_METRIC];
    assert_eq!(h.kind.as_deref(), Some("histogram"));
    // Group by label set (without le) and check every histogram invariant.
    type Row = (String, Option<String>, f64);
    let mut series: BTreeMap<Labels, Vec<Row>> = BTreeMap::new();
    for (name, labels, v) in &h.samples {
        let le = labels.iter().find(|(k, _)| k == "le").map(|(_, v)| v.clone());
        let base: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
        let names: Vec<&str> = base.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["method", "route", "status_class"]);
        series.entry(base).or_default().push((name.clone(), le, *v));
    }
    assert_eq!(series.len(), 3, "GET 2xx, POST 5xx, GET 4xx unmatched");
    for (labels, rows) in &series {
        let buckets: Vec<_> = rows.iter().filter(|r| r.0.ends_with("_bucket")).collect();
        let les: Vec<String> = buckets.iter().map(|b| b.1.clone().unwrap()).collect();
        let mut expected: Vec<String> = HTTP_DURATION_BUCKETS.iter().map(|b| b.to_string()).collect();
        expected.push("+Inf".into());
        assert_eq!(les, expected, "{labels:?}");
        assert!(buckets.windows(2).all(|w| w[0].2 <= w[1].2), "cumulative");
        let count = rows.iter().find(|r| r.0.ends_with("_count")).unwrap().2;
        assert_eq!(buckets.last().unwrap().2, count, "+Inf equals _count");
    }
    let get_ok = vec![
        ("method".to_owned(), "GET".to_owned()),
        ("route".to_owned(), "/clients/:id".to_owned()),
        ("status_class".to_owned(), "2xx".to_owned()),
    ];
    let rows = &series[&get_ok];
    let at = |le: &str| rows.iter().find(|r| r.1.as_deref() == Some(le)).map(|r| r.2);
    assert_eq!(
        (at("0.0025_not_a_boundary"), at("0.005"), at("0.075"), at("0.1")),
        (None, Some(1.0), Some(1.0), Some(2.0))
    );
    let sum = rows.iter().find(|r| r.0.ends_with("_sum")).unwrap().2;
    assert!((sum - 0.083).abs() < 1e-9);
    // The odd route survived escaping and unescaping unchanged.
    assert!(series.keys().any(|k| k[1].1 == "/q\"uo\\te\nd" && k[2].1 == "5xx"));
    assert!(series.keys().any(|k| k[1].1 == "_unmatched" && k[2].1 == "4xx"));
}

#[test]
fn registration_refuses_bad_families() {
    let reg = MetricsRegistry::new();
    assert!(matches!(FamilyDesc::counter("keel_jobs", "x", &[]), Err(MetricsError::InvalidName { .. })));
    assert!(matches!(FamilyDesc::gauge("keel_jobs", " ", &[]), Err(MetricsError::MissingHelp { .. })));
    assert!(matches!(FamilyDesc::gauge("keel_jobs", "x", &["le"]), Err(MetricsError::InvalidLabel { .. })));
    assert!(matches!(FamilyDesc::gauge("keel_jobs", "x", &["a", "a"]), Err(MetricsError::InvalidLabel { .. })));
    let d = FamilyDesc::gauge("keel_jobs", "Jobs.", &["state"]).unwrap();
    reg.register(d.clone(), Vec::new).unwrap();
    assert!(matches!(reg.register(d, Vec::new), Err(MetricsError::Duplicate { .. })));
    let clash = FamilyDesc::counter("http_server_request_duration_seconds_count", "x", &[]);
    assert!(clash.is_err(), "reserved histogram suffix on a counter");
    let pushed = reg.pushed(FamilyDesc::gauge("keel_cache_entries", "Entries.", &["bucket"]).unwrap()).unwrap();
    assert!(matches!(pushed.set(&["a", "b"], 1.0), Err(MetricsError::LabelCount { want: 1, got: 2, .. })));
}

#[test]
fn bad_collector_samples_are_left_out_not_rendered() {
    let reg = MetricsRegistry::new();
    reg.register(FamilyDesc::counter("keel_x_total", "X.", &["k"]).unwrap(), || {
        vec![
            Sample::new(["a"], 1.0),
            Sample::new(["a"], 2.0),
            Sample::new(["b", "c"], 1.0),
            Sample::new(["d"], -1.0),
            Sample::new(["e"], f64::NAN),
        ]
    })
    .unwrap();
    let fams = parse(&reg.render());
    assert_eq!(fams["keel_x_total"].samples, vec![("keel_x_total".to_owned(), vec![("k".into(), "a".into())], 1.0)]);
}

#[test]
fn families_with_nothing_to_report_are_left_out() {
    let reg = MetricsRegistry::new();
    reg.register(FamilyDesc::gauge("keel_y", "Y.", &["k"]).unwrap(), Vec::new).unwrap();
    reg.histogram(FamilyDesc::histogram("keel_z_seconds", "Z.", &["k"]).unwrap(), &[1.0], 5, "k").unwrap();
    // No HELP/TYPE without samples (legal, but stricter readers such as smoke's refuse it).
    assert_eq!(reg.render(), "");
    reg.http().observe("GET", Some("/a"), 200, Duration::from_millis(1));
    assert!(parse(&reg.render()).keys().eq([HTTP_DURATION_METRIC]));
}

#[test]
fn labelled_families_are_capped_and_check_their_labels() {
    let reg = MetricsRegistry::new();
    let h = reg
        .histogram(
            FamilyDesc::histogram("keel_x_duration_seconds", "X.", &["queue", "kind"]).unwrap(),
            &[0.1, 1.0],
            2,
            "kind",
        )
        .unwrap();
    h.observe(&["default", "a"], 0.05).unwrap();
    h.observe(&["default", "b"], 0.5).unwrap();
    h.observe(&["default", "c"], 5.0).unwrap();
    h.observe(&["default", "d"], 5.0).unwrap();
    assert_eq!(h.count(&["default", OVERFLOW_LABEL]), 2, "kinds past the cap are folded");
    assert!(matches!(h.observe(&["default"], 1.0), Err(MetricsError::LabelCount { want: 2, got: 1, .. })));
    let c = reg.counter(FamilyDesc::counter("keel_x_total", "X.", &["kind"]).unwrap(), 10, "kind").unwrap();
    c.inc(&["a"]).unwrap();
    c.inc(&["a"]).unwrap();
    assert_eq!(c.get(&["a"]), 2);
    let fams = parse(&reg.render());
    let x = &fams["keel_x_duration_seconds"];
    assert_eq!(x.kind.as_deref(), Some("histogram"));
    let inf = |kind: &str| {
        x.samples
            .iter()
            .find(|(n, l, _)| {
                n == "keel_x_duration_seconds_bucket"
                    && l.contains(&("kind".into(), kind.into()))
                    && l.contains(&("le".into(), "+Inf".into()))
            })
            .map(|s| s.2)
    };
    assert_eq!((inf("a"), inf("b"), inf(OVERFLOW_LABEL), inf("c")), (Some(1.0), Some(1.0), Some(2.0), None));
    assert_eq!(fams["keel_x_total"].samples, vec![("keel_x_total".to_owned(), vec![("kind".into(), "a".into())], 2.0)]);

    // Wrong uses are refused, naming the rule.
    let gauge = FamilyDesc::gauge("keel_y", "Y.", &["k"]).unwrap();
    assert!(matches!(reg.histogram(gauge.clone(), &[1.0], 5, "k"), Err(MetricsError::WrongKind { .. })));
    let hd = FamilyDesc::histogram("keel_z_seconds", "Z.", &["k"]).unwrap();
    assert!(matches!(reg.histogram(hd.clone(), &[1.0, 1.0], 5, "k"), Err(MetricsError::InvalidBuckets { .. })));
    assert!(matches!(reg.histogram(hd.clone(), &[1.0], 5, "nope"), Err(MetricsError::InvalidLabel { .. })));
    assert!(matches!(reg.register(hd, Vec::new), Err(MetricsError::WrongKind { .. })));
    let clash = FamilyDesc::gauge("keel_x_duration_seconds_count", "X.", &[]).unwrap_err();
    assert!(matches!(clash, MetricsError::InvalidName { .. }), "reserved suffix");
    let dup = FamilyDesc::counter("keel_x_total", "X again.", &[]).unwrap();
    assert!(matches!(reg.register(dup, Vec::new), Err(MetricsError::Duplicate { .. })));
}

#[test]
fn openmetrics_is_served_when_the_scraper_asks_for_it() {
    assert_eq!(Exposition::negotiate(None), Exposition::Text);
    assert_eq!(Exposition::negotiate(Some("text/plain;version=0.0.4")), Exposition::Text);
    let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_eq!(Exposition::negotiate(Some(prometheus)), Exposition::OpenMetrics);
    assert_eq!(Exposition::negotiate(Some("application/openmetrics-text; q=0, text/plain")), Exposition::Text);
    assert!(Exposition::OpenMetrics.content_type().starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(Exposition::Text.content_type().starts_with("text/plain; version=0.0.4"));

    let reg = MetricsRegistry::new();
    reg.register(FamilyDesc::counter("keel_x_total", "X.", &[]).unwrap(), || {
        vec![Sample::new(Vec::<String>::new(), 4.0)]
    })
    .unwrap();
    let om = reg.encode(Exposition::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE keel_x counter\nkeel_x_total 4\n"), "{om}");
    let text = reg.render();
    assert!(!text.contains("# EOF"), "{text}");
    assert!(text.contains("# TYPE keel_x_total counter\nkeel_x_total 4\n"), "{text}");
}

backend_tests!(pool_gauges_read_the_real_pool);

async fn pool_gauges_read_the_real_pool(t: TestDb) {
    let reg = MetricsRegistry::new();
    register_pool_metrics(&reg, &t.db).unwrap();
    // One connection held by us: the pool must count it in use. (Connections go back to the
    // pool on a background task, so "none in use" after a query is not a stable assertion.)
    let text = match &t.db {
        keel_storage::Db::Postgres(p) => {
            let _held = p.acquire().await.unwrap();
            reg.render()
        }
        keel_storage::Db::Sqlite(p) => {
            let _held = p.acquire().await.unwrap();
            reg.render()
        }
    };
    let fams = parse(&text);
    let conns = &fams["keel_db_pool_connections"];
    let value = |state: &str| {
        conns.samples.iter().find(|(_, l, _)| l == &vec![("state".to_owned(), state.to_owned())]).map(|s| s.2)
    };
    let (idle, in_use) = (value("idle").expect("idle"), value("in_use").expect("in_use"));
    assert!(in_use >= 1.0, "the connection we hold is in use: {conns:?}");
    assert!(idle >= 0.0);
    let max = fams["keel_db_pool_max_connections"].samples[0].2;
    assert!(max >= idle + in_use && max > 0.0, "{max}");
}
