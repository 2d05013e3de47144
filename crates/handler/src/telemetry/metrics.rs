//! The custom metrics sent to Application Insights (customMetrics table).

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

pub struct Metrics {
    tool_calls: Counter<u64>,
    tool_errors: Counter<u64>,
    tool_duration: Histogram<f64>,
    throttled: Counter<u64>,
    invocation_duration: Histogram<f64>,
}

impl Metrics {
    pub(super) fn new(meter: &Meter) -> Self {
        Self {
            tool_calls: meter.u64_counter("mcp.tool.calls").with_description("Tool calls, by tool and outcome").build(),
            tool_errors: meter.u64_counter("mcp.tool.errors").with_description("Failed tool calls, by tool and kind").build(),
            tool_duration: meter
                .f64_histogram("mcp.tool.duration")
                .with_unit("ms")
                .with_description("Tool call duration, by tool")
                .build(),
            throttled: meter
                .u64_counter("microsoft_api.throttled")
                .with_description("429 answers from Microsoft APIs, by API (each retry counts)")
                .build(),
            invocation_duration: meter
                .f64_histogram("function.invocation.duration")
                .with_unit("ms")
                .with_description("Duration of timer and queue function invocations (hunts, jobs), by function and outcome")
                .build(),
        }
    }

    /// `tool` is owned by the metric attributes: tools generated from the PowerShell manifest
    /// have names known only at run time.
    pub fn tool_call(&self, tool: &str, duration_ms: f64, error_kind: Option<&'static str>) {
        let tool = tool.to_owned();
        let outcome = if error_kind.is_some() { "error" } else { "ok" };
        self.tool_calls.add(
            1,
            &[
                KeyValue::new("tool", tool.clone()),
                KeyValue::new("outcome", outcome),
            ],
        );
        self.tool_duration
            .record(duration_ms, &[KeyValue::new("tool", tool.clone())]);
        if let Some(kind) = error_kind {
            self.tool_errors.add(
                1,
                &[KeyValue::new("tool", tool), KeyValue::new("kind", kind)],
            );
        }
    }

    pub fn throttled(&self, api: &'static str) {
        self.throttled.add(1, &[KeyValue::new("api", api)]);
    }

    pub fn invocation(&self, function: &str, duration_ms: f64, succeeded: bool) {
        let outcome = if succeeded { "ok" } else { "error" };
        self.invocation_duration.record(
            duration_ms,
            &[
                KeyValue::new("function", function.to_string()),
                KeyValue::new("outcome", outcome),
            ],
        );
    }
}
