//! Trace and span ids on JSON log lines, so a log line and the span it was written in join:
//! `{"trace_id":"…","span_id":"…", …the usual fields}` for every event inside a sampled span.
//!
//! The ids live in the OpenTelemetry layer's span data, reachable through the dispatcher; but
//! while an event is being formatted the thread's dispatcher is already borrowed, so the
//! formatter keeps the (weak) dispatcher that a tiny layer receives when the subscriber is
//! registered.

use opentelemetry::trace::TraceContextExt;
use std::fmt;
use std::sync::{Arc, OnceLock};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The subscriber's dispatcher, set once it is registered.
#[derive(Debug, Clone, Default)]
pub(crate) struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

/// Fills a [`DispatchSlot`]; observes nothing else.
pub(crate) struct CaptureDispatch(pub(crate) DispatchSlot);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0 .0.set(subscriber.downgrade());
    }
    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {}
}

/// Wraps a JSON event formatter, prefixing the object with the current span's ids.
pub(crate) struct WithTraceIds<F> {
    pub(crate) inner: F,
    pub(crate) dispatch: DispatchSlot,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let ids = ctx.lookup_current().and_then(|span| {
            let dispatch = self.dispatch.0.get()?.upgrade()?;
            let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
        });
        let Some((trace_id, span_id)) = ids else { return self.inner.format_event(ctx, writer, event) };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}
