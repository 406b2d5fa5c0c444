//! `GET /metrics`: the Prometheus endpoint, its numbers and its bounds, over real HTTP.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{BASE_CONFIG, Daemon, TIMEOUT};

/// natterd with metrics on a free port; returns it and the metrics address from its log.
fn with_metrics() -> (Daemon, SocketAddr) {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nmax_clients = 3\n[metrics]\nlisten = \"127.0.0.1:0\"\n"
    ));
    d.wait_log("metrics endpoint addr=");
    let log = d.log();
    let addr = log
        .split("metrics endpoint addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("metrics address in the log");
    (d, addr)
}

/// Sends `request` as is and returns the whole response.
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn metrics_count_what_stats_counts() {
    let (d, addr) = with_metrics();
    let [mut alice, _bob, _carol] = d.room(["alice", "bob", "carol"]);
    alice.say("hello");
    alice.say("/ls");
    alice.line();
    let mut full = d.connect();
    full.expect("! server full");
    let text = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("content-type: application/openmetrics-text"),
        "{text}"
    );
    for line in [
        "# HELP natter_users_online",
        "natter_users_online 3",
        "natter_connections 3",
        "natter_rooms 1",
        "natter_messages_total 1",
        "natter_deliveries_total 2",
        "natter_skipped_messages_total 0",
        "natter_refused_total{cause=\"server_full\"} 1",
        "natter_dropped_total{cause=\"send_queue_full\"} 0",
        "natter_bans 0",
        "# EOF",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}

#[test]
fn only_get_metrics_and_bounded_requests() {
    let (_d, addr) = with_metrics();
    assert!(http(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 404"));
    let post = http(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    // A head far over the bound is refused, not buffered.
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 100_000));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = http(addr, &huge);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Garbage gets a 400 or a close, and the endpoint goes on.
    let junk = http(addr, b"\x16\x03\x01\x00\xff garbage\r\n\r\n");
    assert!(
        junk.is_empty() || junk.starts_with("HTTP/1.1 400"),
        "{junk}"
    );
    assert!(http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200"));
}
