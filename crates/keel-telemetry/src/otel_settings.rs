//! The standard OpenTelemetry variables, read and checked: `OTEL_EXPORTER_OTLP_ENDPOINT` (and
//! `_TRACES_ENDPOINT`), `_PROTOCOL`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` (+ `_ARG`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`. Transport-free, so a build without the
//! `otel` feature can still say that tracing was asked for.
//!
//! Stricter than the SDK, which falls back to defaults with a warning: a typo in a sampler or an
//! attribute list is a startup error naming the variable, like every other Keel setting.

use keel_config::Source;
use std::time::Duration;

/// The traces path appended to `OTEL_EXPORTER_OTLP_ENDPOINT`, per the OTLP/HTTP specification.
const TRACES_PATH: &str = "/v1/traces";

/// The exporter's request timeout when `OTEL_EXPORTER_OTLP_TIMEOUT` is unset (the spec's 10 s).
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the OpenTelemetry variables cannot be used; names the variable and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct OtelConfigError {
    /// The variable at fault.
    pub variable: &'static str,
    /// What is wrong and what to set instead.
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> OtelConfigError {
    OtelConfigError { variable, message: message.into() }
}

/// Which spans are recorded: `OTEL_TRACES_SAMPLER` with its `_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TraceSampler {
    /// `always_on`: every trace.
    AlwaysOn,
    /// `always_off`: none.
    AlwaysOff,
    /// `traceidratio`: this fraction of traces (0.0 to 1.0), chosen by trace id.
    Ratio(f64),
    /// `parentbased_*`: follow an inbound parent's decision; roots use the inner sampler.
    ParentBased(RootSampler),
}

/// The sampler a parent-based sampler uses for traces that start here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootSampler {
    /// `parentbased_always_on` (the default sampler).
    AlwaysOn,
    /// `parentbased_always_off`.
    AlwaysOff,
    /// `parentbased_traceidratio`.
    Ratio(f64),
}

/// Where and how traces are exported. [`OtelSettings::from_source`] returns `None` when no
/// endpoint is set: tracing is off and costs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelSettings {
    /// The full OTLP/HTTP traces URL (`…/v1/traces`).
    pub traces_endpoint: String,
    /// `service.name`: `OTEL_SERVICE_NAME`, else `service.name` in `OTEL_RESOURCE_ATTRIBUTES`,
    /// else the binary's name.
    pub service_name: String,
    /// The other resource attributes, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// Which traces are recorded.
    pub sampler: TraceSampler,
    /// One export request's time limit (`OTEL_EXPORTER_OTLP_TIMEOUT`, milliseconds).
    pub timeout: Duration,
}

impl OtelSettings {
    /// Reads the standard variables; `default_service` names the process when neither
    /// `OTEL_SERVICE_NAME` nor a `service.name` attribute does. `Ok(None)`: tracing is off
    /// (no endpoint, or `OTEL_SDK_DISABLED=true`).
    pub fn from_source(src: &dyn Source, default_service: &str) -> Result<Option<Self>, OtelConfigError> {
        let get = |k: &str| src.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match get("OTEL_SDK_DISABLED").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => {}
            Some("true") => return Ok(None),
            Some(other) => return Err(bad("OTEL_SDK_DISABLED", format!("must be true or false, got {other:?}"))),
        }
        let traces_endpoint = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(url), _) => check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url)?,
            (None, Some(base)) => {
                check_url("OTEL_EXPORTER_OTLP_ENDPOINT", &base)?;
                format!("{}{TRACES_PATH}", base.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        for var in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let Some(p) = get(var) {
                check_protocol(var, &p)?;
                break;
            }
        }
        let mut resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(text) => parse_resource_attributes(&text)?,
            None => Vec::new(),
        };
        let from_attrs = resource_attributes.iter().position(|(k, _)| k == "service.name");
        let from_attrs = from_attrs.map(|i| resource_attributes.remove(i).1);
        let service_name = get("OTEL_SERVICE_NAME").or(from_attrs).unwrap_or_else(|| default_service.to_owned());
        let sampler = parse_sampler(get("OTEL_TRACES_SAMPLER").as_deref(), get("OTEL_TRACES_SAMPLER_ARG").as_deref())?;
        let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").map(|v| ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", v)) {
            Some((var, v)) => parse_timeout(var, &v)?,
            None => match get("OTEL_EXPORTER_OTLP_TIMEOUT") {
                Some(v) => parse_timeout("OTEL_EXPORTER_OTLP_TIMEOUT", &v)?,
                None => DEFAULT_OTLP_TIMEOUT,
            },
        };
        Ok(Some(Self { traces_endpoint, service_name, resource_attributes, sampler, timeout }))
    }
}

fn check_url(var: &'static str, url: &str) -> Result<String, OtelConfigError> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => Ok(url.to_owned()),
        _ => Err(bad(var, format!("{url:?} is not an http:// or https:// URL; use e.g. http://otel-collector:4318"))),
    }
}

fn check_protocol(var: &'static str, p: &str) -> Result<(), OtelConfigError> {
    match p {
        "http/protobuf" => Ok(()),
        "grpc" => Err(bad(
            var,
            "grpc is not supported by Keel (it exports OTLP over HTTP only); set http/protobuf and point the \
             endpoint at the collector's HTTP port (4318 by default)",
        )),
        other => Err(bad(var, format!("{other:?} is not supported; set http/protobuf"))),
    }
}

fn parse_timeout(var: &'static str, v: &str) -> Result<Duration, OtelConfigError> {
    match v.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
        _ => Err(bad(var, format!("must be a positive number of milliseconds, got {v:?}"))),
    }
}

fn parse_ratio(arg: Option<&str>) -> Result<f64, OtelConfigError> {
    let Some(arg) = arg else { return Ok(1.0) };
    match arg.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(bad("OTEL_TRACES_SAMPLER_ARG", format!("must be a ratio from 0.0 to 1.0, got {arg:?}"))),
    }
}

/// The spec's sampler names; unsupported ones (`jaeger_remote`, `xray`) are refused by name.
fn parse_sampler(name: Option<&str>, arg: Option<&str>) -> Result<TraceSampler, OtelConfigError> {
    Ok(match name.unwrap_or("parentbased_always_on") {
        "always_on" => TraceSampler::AlwaysOn,
        "always_off" => TraceSampler::AlwaysOff,
        "traceidratio" => TraceSampler::Ratio(parse_ratio(arg)?),
        "parentbased_always_on" => TraceSampler::ParentBased(RootSampler::AlwaysOn),
        "parentbased_always_off" => TraceSampler::ParentBased(RootSampler::AlwaysOff),
        "parentbased_traceidratio" => TraceSampler::ParentBased(RootSampler::Ratio(parse_ratio(arg)?)),
        other => {
            return Err(bad(
                "OTEL_TRACES_SAMPLER",
                format!(
                    "{other:?} is not supported; use always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio"
                ),
            ))
        }
    })
}

/// `key1=value1,key2=value2`, values percent-encoded (W3C Baggage octets), per the spec.
fn parse_resource_attributes(text: &str) -> Result<Vec<(String, String)>, OtelConfigError> {
    let var = "OTEL_RESOURCE_ATTRIBUTES";
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(bad(var, format!("{pair:?} is not key=value; use e.g. deployment.environment=prod,team=core")));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(bad(var, format!("{pair:?} has an empty key")));
        }
        let v = percent_encoding::percent_decode_str(v.trim())
            .decode_utf8()
            .map_err(|_| bad(var, format!("the value of {k:?} is not UTF-8 once percent-decoded")))?;
        out.push((k.to_owned(), v.into_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_config::MapSource;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<OtelSettings>, OtelConfigError> {
        let src = MapSource(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        OtelSettings::from_source(&src, "keel-test")
    }

    #[test]
    fn off_when_no_endpoint_is_set_whatever_else_is() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[("OTEL_SERVICE_NAME", "x"), ("OTEL_TRACES_SAMPLER", "always_on")]).unwrap(), None);
        assert_eq!(read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]).unwrap(), None);
        let disabled = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")];
        assert_eq!(read(&disabled).unwrap(), None);
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_signal_one_is_used_as_is() {
        let s = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap().unwrap();
        assert_eq!(s.traces_endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.service_name, "keel-test");
        assert_eq!(s.sampler, TraceSampler::ParentBased(RootSampler::AlwaysOn));
        assert_eq!(s.timeout, DEFAULT_OTLP_TIMEOUT);
        let s = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://wrong:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://c.example/custom"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.traces_endpoint, "https://c.example/custom");
    }

    #[test]
    fn service_name_and_resource_attributes() {
        let s = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs, deployment.environment=prod,team=a%2Cb"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.service_name, "from-attrs");
        assert_eq!(
            s.resource_attributes,
            vec![("deployment.environment".into(), "prod".into()), ("team".into(), "a,b".into())]
        );
        let s = read(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "wins"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.service_name, "wins");
    }

    #[test]
    fn samplers_and_their_argument() {
        let with = |name: &str, arg: Option<&str>| {
            let mut v = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_TRACES_SAMPLER", name)];
            v.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
            read(&v).map(|s| s.unwrap().sampler)
        };
        assert_eq!(with("always_off", None).unwrap(), TraceSampler::AlwaysOff);
        assert_eq!(with("traceidratio", Some("0.25")).unwrap(), TraceSampler::Ratio(0.25));
        assert_eq!(with("traceidratio", None).unwrap(), TraceSampler::Ratio(1.0));
        assert_eq!(
            with("parentbased_traceidratio", Some("0")).unwrap(),
            TraceSampler::ParentBased(RootSampler::Ratio(0.0))
        );
        assert_eq!(with("traceidratio", Some("1.5")).unwrap_err().variable, "OTEL_TRACES_SAMPLER_ARG");
        let e = with("jaeger_remote", None).unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER");
        assert!(e.message.contains("parentbased_always_on"), "{e}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
        assert!(e.to_string().contains("http://otel-collector:4318"), "{e}");
        let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
            .unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert!(e.message.contains("http/protobuf"), "{e}");
        let ok = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
        assert!(read(&ok).unwrap().is_some());
        let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_RESOURCE_ATTRIBUTES", "novalue")])
            .unwrap_err();
        assert_eq!(e.variable, "OTEL_RESOURCE_ATTRIBUTES");
        let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")])
            .unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_TIMEOUT");
        let e = read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "yes")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_SDK_DISABLED");
    }
}
