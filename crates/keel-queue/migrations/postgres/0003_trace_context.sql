-- OpenTelemetry: the W3C trace context (`traceparent`, then `;` and `tracestate` when there is
-- one) of the span that enqueued the job, so the worker's span continues the same trace across
-- processes. NULL when tracing was off at enqueue: the worker's span is then a root.
ALTER TABLE keel_jobs ADD COLUMN trace_context text;
