//! `GET /metrics` for Prometheus (`[metrics] listen`): the counters `natterctl stats` shows,
//! in the OpenMetrics text format Prometheus scrapes, encoded by `prometheus-client`.
//!
//! The registry is built from one `stats` report per scrape, so the metrics and `natterctl
//! stats` can never disagree and the chat path keeps its plain atomic counters. The HTTP side
//! is hyper's HTTP/1 server with every bound set: 16 connections at once, 5 s for a request's
//! head, one request per connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::daemon::{Daemon, StatsReply};

/// Scrapes served at once; more wait for the kernel's backlog.
const MAX_CONNECTIONS: usize = 16;
/// A request's head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest request head read (bytes); a longer one is refused.
const MAX_HEAD: usize = 16 * 1024;
/// What the body is.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics, as text, from a `stats` report.
pub fn render(stats: &StatsReply) -> String {
    let mut registry = Registry::default();
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let g: Gauge = Gauge::default();
        g.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, g);
    };
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c: Counter = Counter::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    gauge(
        &mut registry,
        "natter_connections",
        "Connections open now, logged in or not",
        stats.connections,
    );
    gauge(
        &mut registry,
        "natter_users_online",
        "Users logged in now (the whole cluster in one)",
        stats.users_online,
    );
    gauge(
        &mut registry,
        "natter_peak_users",
        "Most users online at once since start",
        stats.peak_users,
    );
    gauge(&mut registry, "natter_rooms", "Rooms now", stats.rooms);
    gauge(&mut registry, "natter_bans", "Bans in force", stats.bans);
    gauge(&mut registry, "natter_mutes", "Mutes in force", stats.mutes);
    gauge(
        &mut registry,
        "natter_uptime_seconds",
        "Seconds since natterd started",
        stats.uptime_secs,
    );
    counter(
        &mut registry,
        "natter_accepted",
        "Connections accepted",
        stats.accepted,
    );
    counter(
        &mut registry,
        "natter_messages",
        "Group and private messages relayed",
        stats.lines_relayed,
    );
    counter(
        &mut registry,
        "natter_deliveries",
        "Copies of group messages queued for readers",
        stats.deliveries,
    );
    counter(
        &mut registry,
        "natter_skipped_messages",
        "Group messages skipped for slow readers",
        stats.skipped_messages,
    );
    counter(
        &mut registry,
        "natter_received_bytes",
        "Bytes read from clients",
        stats.bytes_in,
    );
    counter(
        &mut registry,
        "natter_sent_bytes",
        "Bytes written to clients",
        stats.bytes_out,
    );
    counter(
        &mut registry,
        "natter_kicks",
        "Users kicked by operators",
        stats.kicks,
    );
    counter(
        &mut registry,
        "natter_muted_messages",
        "Messages refused to muted users",
        stats.muted_messages,
    );
    counter(
        &mut registry,
        "natter_reports",
        "Reports sent with /report",
        stats.reports,
    );
    counter(
        &mut registry,
        "natter_log_events_suppressed",
        "Client-caused log events held back",
        stats.log_events_suppressed,
    );
    let by_cause = |registry: &mut Registry, name: &str, help: &str, causes: &[(String, u64)]| {
        let family = Family::<Vec<(String, String)>, Counter>::default();
        for (cause, n) in causes {
            family
                .get_or_create(&vec![("cause".to_owned(), cause.clone())])
                .inc_by(*n);
        }
        registry.register(name, help, family);
    };
    let refused: Vec<(String, u64)> = stats.refused.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let dropped: Vec<(String, u64)> = stats.dropped.iter().map(|(k, v)| (k.clone(), *v)).collect();
    by_cause(
        &mut registry,
        "natter_refused",
        "Connections and logins refused, by cause",
        &refused,
    );
    by_cause(
        &mut registry,
        "natter_dropped",
        "Connections the server ended, by cause",
        &dropped,
    );
    if let Some(c) = &stats.cluster {
        gauge(
            &mut registry,
            "natter_cluster_connected",
            "1 while NATS is connected",
            u64::from(c.connected),
        );
        gauge(
            &mut registry,
            "natter_cluster_nodes",
            "Other nodes heard within the node timeout",
            c.nodes.len() as u64,
        );
        counter(
            &mut registry,
            "natter_cluster_dropped",
            "Messages to other nodes dropped",
            c.dropped,
        );
        counter(
            &mut registry,
            "natter_cluster_missed",
            "Times NATS dropped messages for this node",
            c.missed,
        );
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// Serves `/metrics` on `listener` until natterd shuts down.
pub async fn serve(listener: TcpListener, daemon: Arc<Daemon>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics endpoint");
    }
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = daemon.shutdown_requested() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().acquire_owned().await else {
            return;
        };
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let daemon = daemon.clone();
                async move { Ok::<_, Infallible>(answer(&request, &daemon)) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "metrics: connection ended");
            }
            drop(place);
        });
    }
}

/// The answer to one request: the metrics for `GET /metrics`, else an error status.
fn answer(request: &Request<Incoming>, daemon: &Daemon) -> Response<Full<Bytes>> {
    let status = |code: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = code;
        response
    };
    if request.uri().path() != "/metrics" {
        return status(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(render(&daemon.report()))));
    if let Ok(value) = CONTENT_TYPE.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Binds the metrics listener, if `[metrics] listen` is set.
pub fn bind(addr: Option<SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    use anyhow::Context;
    addr.map(|addr| {
        crate::server::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_there_with_help() {
        let stats = StatsReply {
            users_online: 3,
            lines_relayed: 7,
            deliveries: 20,
            refused: [("server_full".into(), 2), ("banned".into(), 0)].into(),
            dropped: [("send_queue_full".into(), 1)].into(),
            ..StatsReply::default()
        };
        let text = render(&stats);
        for line in [
            "# HELP natter_users_online Users logged in now",
            "natter_users_online 3",
            "natter_messages_total 7",
            "natter_deliveries_total 20",
            "natter_refused_total{cause=\"server_full\"} 2",
            "natter_refused_total{cause=\"banned\"} 0",
            "natter_dropped_total{cause=\"send_queue_full\"} 1",
            "# TYPE natter_connections gauge",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
