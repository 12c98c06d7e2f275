//! OpenTelemetry across a service hop: the services export to an OTLP receiver running in this
//! test; one ComputeRanking yields spans in the ranking and the metrics service that share one
//! trace, the metrics server span's parent being the ranking service's client span.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::any_value::Value,
    trace::v1::{Span, span::SpanKind},
};
use tonic::{Request, Response, Status};
use zonerank_api::v1;
use zonerank_integration_tests::Deployment;

/// What the receiver has been sent.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    metrics: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut names = self.metrics.lock().unwrap();
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                names.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            Value::StringValue(s) => s.clone(),
            Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

fn find<'a>(spans: &'a [(String, Span)], kind: SpanKind, method: &str) -> Option<&'a Span> {
    spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == kind as i32 && attribute(s, "rpc.method").as_deref() == Some(method))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_ranking_is_one_trace_across_the_ranking_and_metrics_services() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let receiver = received.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .add_service(MetricsServiceServer::new(receiver))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    let telemetry = zonerank_telemetry::init_with_endpoint(
        zonerank_telemetry::LogFormat::Text,
        "zonerank-test",
        Some(&endpoint),
    );
    assert!(telemetry.exporting());

    let deployment = Deployment::postgres_and_redis().await;
    let mut ingestion = deployment.ingestion_client().await;
    ingestion
        .upsert_regions(v1::UpsertRegionsRequest {
            regions: vec![v1::Region {
                code: "410300".into(),
                name: "洛阳市".into(),
                level: v1::RegionLevel::City as i32,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    ingestion
        .upsert_zones(v1::UpsertZonesRequest {
            zones: ["A", "B", "C"]
                .iter()
                .map(|id| v1::Zone {
                    id: id.to_string(),
                    name: id.to_string(),
                    region_code: "410300".into(),
                    kind: v1::ZoneKind::IndustrialPark as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    let csv = "entity_kind,entity_id,indicator,period,value,unit
ZONE,A,revenue,2023,10,亿元
ZONE,B,revenue,2023,20,亿元
ZONE,C,revenue,2023,30,亿元
";
    ingestion
        .import_csv(v1::ImportCsvRequest {
            content: csv.as_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ranking = deployment.ranking_client().await;
    ranking
        .create_scheme(v1::CreateSchemeRequest {
            scheme: Some(v1::Scheme {
                id: "revenue-only".into(),
                name: "revenue".into(),
                entity_kind: v1::EntityKind::Zone as i32,
                criteria: vec![v1::Criterion {
                    metric: "revenue".into(),
                    weight: 1.0,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let run = ranking
        .compute_ranking(v1::ComputeRankingRequest {
            scheme_id: "revenue-only".into(),
            period: "2023".into(),
            ..Default::default()
        })
        .await
        .expect("ranking")
        .into_inner()
        .run
        .unwrap();
    assert_eq!(run.entity_count, 3);

    // A refused request is traced with its own status, not as cancelled.
    let refused = ranking
        .get_scheme(v1::GetSchemeRequest {
            scheme_id: "no-such-scheme".into(),
            version: 0,
        })
        .await
        .expect_err("unknown scheme");
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // Export, then wait for the receiver to have the hop.
    let mut spans = Vec::new();
    for _ in 0..50 {
        let flushing = tokio::task::spawn_blocking({
            let tracer = telemetry.tracer_handle();
            move || tracer.force_flush()
        });
        flushing.await.unwrap();
        spans = received.spans.lock().unwrap().clone();
        let count = |kind: SpanKind| {
            spans
                .iter()
                .filter(|(_, s)| {
                    s.kind == kind as i32
                        && attribute(s, "rpc.method").as_deref() == Some("StreamMetrics")
                })
                .count()
        };
        if find(&spans, SpanKind::Server, "ComputeRanking").is_some()
            && find(&spans, SpanKind::Server, "GetScheme").is_some()
            && count(SpanKind::Server) >= 2
            && count(SpanKind::Client) >= 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ranking_span =
        find(&spans, SpanKind::Server, "ComputeRanking").expect("ranking server span");
    let metrics_span =
        find(&spans, SpanKind::Server, "StreamMetrics").expect("metrics server span");

    assert_eq!(
        attribute(ranking_span, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        attribute(ranking_span, "rpc.service").as_deref(),
        Some("zonerank.v1.RankingService")
    );
    assert_eq!(
        attribute(ranking_span, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );
    let refused_span = find(&spans, SpanKind::Server, "GetScheme").expect("refused call's span");
    assert_eq!(
        attribute(refused_span, "rpc.grpc.status_code").as_deref(),
        Some("5"),
        "NOT_FOUND"
    );
    assert_eq!(
        attribute(metrics_span, "rpc.service").as_deref(),
        Some("zonerank.v1.MetricsService")
    );
    assert_eq!(
        attribute(metrics_span, "rpc.grpc.status_code").as_deref(),
        Some("0")
    );

    // One trace, parent-linked across the hop. The ranking reads this period and the year
    // before, so there are two calls: each metrics server span hangs under one client span.
    let clients: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| {
            s.kind == SpanKind::Client as i32
                && attribute(s, "rpc.method").as_deref() == Some("StreamMetrics")
        })
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| {
            s.kind == SpanKind::Server as i32
                && attribute(s, "rpc.method").as_deref() == Some("StreamMetrics")
        })
        .collect();
    assert_eq!(clients.len(), 2, "two metrics calls");
    assert_eq!(servers.len(), 2);
    for client in &clients {
        assert_eq!(client.trace_id, ranking_span.trace_id);
        assert_eq!(client.parent_span_id, ranking_span.span_id);
        assert_eq!(
            attribute(client, "rpc.grpc.status_code").as_deref(),
            Some("0")
        );
    }
    for server in &servers {
        assert_eq!(
            server.trace_id, ranking_span.trace_id,
            "the trace crosses the gRPC hop"
        );
        assert!(
            clients.iter().any(|c| c.span_id == server.parent_span_id),
            "linked through traceparent"
        );
    }

    // Request metrics and domain counters are exported too.
    for _ in 0..50 {
        tokio::task::spawn_blocking({
            let meter = telemetry.meter_handle();
            move || meter.force_flush()
        })
        .await
        .unwrap();
        let names = received.metrics.lock().unwrap().clone();
        if names.iter().any(|n| n == "rpc.server.duration")
            && names.iter().any(|n| n == "zonerank.rankings.computed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names = received.metrics.lock().unwrap().clone();
    for expected in [
        "rpc.server.duration",
        "rpc.server.requests",
        "rpc.client.duration",
        "zonerank.observations.accepted",
        "zonerank.rankings.computed",
        "zonerank.cache.misses",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    deployment.stop().await;
}
