//! One subscriber setup for the binaries: JSON in production, pretty in development, and (with
//! the `otel` feature and an endpoint configured) OpenTelemetry traces beside the log.

use crate::OtelSettings;
use keel_config::LogFormat;
use tracing_subscriber::{fmt, EnvFilter};

/// Why [`init_logging`] could not install the subscriber.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter text (`RUST_LOG`) does not parse.
    #[error("RUST_LOG is not a valid filter ({0}); use e.g. RUST_LOG=info or RUST_LOG=keel_api=debug,info")]
    Filter(String),
    /// A global subscriber was installed before (by this call or another crate).
    #[error("logging was already initialised")]
    AlreadyInitialised,
    /// Traces were asked for (`OTEL_EXPORTER_OTLP_ENDPOINT`) but cannot be exported.
    #[error("OpenTelemetry: {0}")]
    Otel(String),
}

/// Installs the global subscriber. Logs go to stderr so stdout stays free for command output
/// (`keel-ops … --json` pipes cleanly).
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    init_telemetry(format, filter, None).map(|_| ())
}

/// Keeps the trace exporter; [`TelemetryGuard::shutdown`] sends what is still buffered.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TelemetryGuard {
    /// True when spans are being exported.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otel")]
        return self.provider.is_some();
        #[cfg(not(feature = "otel"))]
        false
    }

    /// Flushes and stops the exporter (waiting at most its timeout). Runs the blocking SDK
    /// shutdown off the async workers: its export requests are tasks on this very runtime.
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(p) = self.provider {
            let res = tokio::task::spawn_blocking(move || p.shutdown()).await;
            if let Ok(Err(e)) = res {
                tracing::warn!(event = "otel_shutdown_failed", error = %e, "could not flush the last spans");
            }
        }
    }
}

/// [`init_logging`], plus OpenTelemetry traces when `otel` is `Some` (see
/// [`OtelSettings::from_source`]): spans are exported over OTLP/HTTP and JSON log lines inside a
/// sampled span carry `trace_id` and `span_id`. Call from inside the tokio runtime.
pub fn init_telemetry(
    format: LogFormat,
    filter: &str,
    otel: Option<&OtelSettings>,
) -> Result<TelemetryGuard, LoggingError> {
    let filter = EnvFilter::try_new(filter).map_err(|e| LoggingError::Filter(e.to_string()))?;
    #[cfg(not(feature = "otel"))]
    if let Some(s) = otel {
        return Err(LoggingError::Otel(format!(
            "traces to {} were asked for, but this build has no OpenTelemetry support (the `otel` feature); \
             unset OTEL_EXPORTER_OTLP_ENDPOINT or use a build with it",
            s.traces_endpoint
        )));
    }
    #[cfg(feature = "otel")]
    if let Some(s) = otel {
        return init_with_traces(format, filter, s);
    }
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true);
    let res = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => {
            builder.compact().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
    res.map_err(|_| LoggingError::AlreadyInitialised)?;
    Ok(TelemetryGuard::default())
}

#[cfg(feature = "otel")]
fn init_with_traces(format: LogFormat, filter: EnvFilter, s: &OtelSettings) -> Result<TelemetryGuard, LoggingError> {
    use crate::otel::log_ids::{CaptureDispatch, DispatchSlot, WithTraceIds};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let provider = crate::otel::provider(s).map_err(|e| LoggingError::Otel(e.to_string()))?;
    let traces = tracing_opentelemetry::layer().with_tracer(crate::otel::tracer(&provider));
    let registry = tracing_subscriber::registry().with(filter).with(traces);
    let res = match format {
        LogFormat::Json => {
            let slot = DispatchSlot::default();
            let inner = fmt::format().json().flatten_event(true).with_current_span(true).with_span_list(false);
            let log = fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .event_format(WithTraceIds { inner, dispatch: slot.clone() });
            registry.with(log).with(CaptureDispatch(slot)).try_init()
        }
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .compact()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    res.map_err(|_| LoggingError::AlreadyInitialised)?;
    Ok(TelemetryGuard { provider: Some(provider) })
}
