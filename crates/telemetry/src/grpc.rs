//! A span per RPC with the gRPC semantic attributes, on both sides of a call, joined by W3C
//! trace context in the gRPC metadata.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http::HeaderMap;
use http_body::{Body, Frame};
use opentelemetry::{
    KeyValue, global,
    propagation::{Extractor, Injector},
    trace::TraceContextExt,
};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::instruments;

/// The service and method of a gRPC path ("/zonerank.v1.RankingService/ComputeRanking").
fn rpc_of(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_string();
    let method = parts.next().unwrap_or_default().to_string();
    (service, method)
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Puts the current span's trace context into outgoing gRPC metadata (`traceparent`).
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = Span::current().context();
    global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

/// A client span for a call to `service`/`method` of another zonerank service; enter it (or
/// instrument the call with it) and call [`inject_context`] inside.
pub fn client_span(service: &str, method: &str) -> Span {
    tracing::info_span!(
        "grpc.client",
        otel.name = %format!("{service}/{method}"),
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
    )
}

/// Records a call's outcome on its span (and the error status OpenTelemetry shows).
pub fn record_status(span: &Span, code: i32) {
    span.record("rpc.grpc.status_code", code);
    if code != 0 {
        span.record("otel.status_code", "ERROR");
    }
}

/// Tower layer for tonic's server: a server span per RPC, its parent taken from the caller's
/// `traceparent`, the status code recorded when the response ends, and request metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTelemetryLayer;

impl<S> tower::Layer<S> for GrpcTelemetryLayer {
    type Service = GrpcTelemetry<S>;

    fn layer(&self, inner: S) -> GrpcTelemetry<S> {
        GrpcTelemetry { inner }
    }
}

/// The service [`GrpcTelemetryLayer`] wraps around tonic's routes.
#[derive(Clone, Debug)]
pub struct GrpcTelemetry<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<TelemetryBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (service, method) = rpc_of(request.uri().path());
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %format!("{service}/{method}"),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = Empty,
            otel.status_code = Empty,
            trace_id = Empty,
        );
        let parent =
            global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        let _ = span.set_parent(parent);
        let trace_id = span.context().span().span_context().trace_id();
        if trace_id != opentelemetry::trace::TraceId::INVALID {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        let start = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(async move {
            let response = {
                use tracing::Instrument;
                future.instrument(span.clone()).await?
            };
            // Errors come trailers-only: the status is in the headers.
            let early = grpc_status(response.headers());
            let finish = Finish {
                span,
                service,
                method,
                start,
                early,
                done: false,
            };
            Ok(response.map(|inner| TelemetryBody {
                inner,
                early,
                finish,
            }))
        })
    }
}

/// The id a client quotes to find a failed request in the logs: the trace id of the RPC being
/// served when tracing is on, else a fresh random id (logged with the failure).
pub fn request_id() -> String {
    let trace_id = Span::current().context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        return trace_id.to_string();
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Records the outcome once, when the response body ends or is dropped.
struct Finish {
    span: Span,
    service: String,
    method: String,
    start: Instant,
    /// The status a trailers-only response carried in its headers.
    early: Option<i32>,
    done: bool,
}

impl Finish {
    fn record(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        record_status(&self.span, code);
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", self.service.clone()),
            KeyValue::new("rpc.method", self.method.clone()),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        let metrics = instruments();
        metrics.rpc_requests.add(1, &attributes);
        metrics
            .rpc_duration
            .record(self.start.elapsed().as_secs_f64() * 1000.0, &attributes);
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        // A trailers-only answer (every error) ends without its body being polled: its status
        // is the one in the headers. Otherwise the client went away first: CANCELLED.
        self.record(self.early.unwrap_or(1));
    }
}

/// A response body that reports the RPC's status when its trailers pass.
pub struct TelemetryBody<B> {
    inner: B,
    early: Option<i32>,
    finish: Finish,
}

impl<B> Body for TelemetryBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = grpc_status(trailers).or(this.early).unwrap_or(0);
                    this.finish.record(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish.record(13),
            Poll::Ready(None) => {
                let code = this.early.unwrap_or(0);
                this.finish.record(code);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::rpc_of;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            rpc_of("/zonerank.v1.RankingService/ComputeRanking"),
            (
                "zonerank.v1.RankingService".to_string(),
                "ComputeRanking".to_string()
            )
        );
        assert_eq!(rpc_of("/"), (String::new(), String::new()));
    }
}
