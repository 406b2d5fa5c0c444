//! The load generator's clients: connect, log in, read lines, and count what arrives.
//!
//! Every client runs on the bench's single-threaded runtime, so the shared counters are
//! plain atomics nobody contends for.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

/// What every client reports into.
#[derive(Debug)]
pub struct Shared {
    /// When the bench started; message send times are microseconds after this.
    pub epoch: Instant,
    /// `* x joined` lines received, by everyone.
    pub joins: AtomicU64,
    /// Benchmark messages received, by everyone.
    pub deliveries: AtomicU64,
    /// Per sender: its messages received, by everyone.
    pub per_sender: Vec<AtomicU64>,
    /// Send-to-receipt latency, microseconds.
    pub latency: Mutex<Histogram<u64>>,
    /// Whether receivers record latency (off while warming up).
    pub measuring: AtomicBool,
    /// Clients the server disconnected.
    pub closed: AtomicU64,
    /// `!` lines received (e.g. skipped-messages notes).
    pub notices: AtomicU64,
    /// `* you are in #k...` lines: clients that reached their bench room.
    pub entered: AtomicU64,
}

impl Shared {
    /// Counters for `senders` senders.
    pub fn new(senders: usize) -> Arc<Shared> {
        Arc::new(Shared {
            epoch: Instant::now(),
            joins: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            per_sender: (0..senders).map(|_| AtomicU64::new(0)).collect(),
            latency: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds")),
            measuring: AtomicBool::new(false),
            closed: AtomicU64::new(0),
            notices: AtomicU64::new(0),
            entered: AtomicU64::new(0),
        })
    }

    /// Microseconds since the epoch.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// The local address for client `i`: spread over `sources` loopback addresses 127.0.0.1..
/// so that one address's ephemeral ports are not the limit.
pub fn source(i: usize, sources: usize, host: IpAddr) -> Option<SocketAddr> {
    match host {
        IpAddr::V4(_) if sources > 1 => {
            let last = 1 + (i % sources) as u8;
            Some(SocketAddr::from(([127, 0, 0, last], 0)))
        }
        _ => None,
    }
}

/// A logged-in connection: its halves and what arrived after the welcome line.
pub type Login = (OwnedReadHalf, OwnedWriteHalf, Vec<u8>);

/// Connects, logs in as `nick`, and returns the halves once the welcome line arrived.
pub async fn login(
    server: SocketAddr,
    bind: Option<SocketAddr>,
    nick: &str,
) -> anyhow::Result<Login> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(bind) = bind {
        socket.bind(bind)?;
    }
    let stream = socket.connect(server).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (mut read, mut write) = stream.into_split();
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut sent = false;
    loop {
        let n = read.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed during login: {}", String::from_utf8_lossy(&buf));
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if !sent && text.contains("Choose a nickname") {
            write.write_all(format!("{nick}\r\n").as_bytes()).await?;
            sent = true;
        }
        if sent && let Some(at) = find(&buf, b"* welcome, ") {
            // Anything after the welcome line belongs to the reader.
            if let Some(end) = find(&buf[at..], b"\r\n") {
                let rest = buf.split_off(at + end + 2);
                return Ok((read, write, rest));
            }
        }
        if text.contains("\r\n! ") && sent {
            bail!("refused: {text}");
        }
    }
}

/// Reads everything a client receives until the server closes or `stop` is set, counting
/// joins and benchmark messages (`m <sender> <seq> <sent_us> ...`).
pub async fn read_loop(
    mut read: OwnedReadHalf,
    mut pending: Vec<u8>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples: Vec<u64> = Vec::new();
    // Lines that came in with the welcome line.
    consume(&mut pending, &shared, &mut samples);
    loop {
        // No timer per read: a reader ends when natterd closes its connection, which
        // follows when the bench drops the writing half (or exits).
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if !stop.load(Relaxed) {
                    shared.closed.fetch_add(1, Relaxed);
                }
                break;
            }
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        consume(&mut pending, &shared, &mut samples);
        if !samples.is_empty() {
            let mut hist = shared.latency.lock().await;
            for s in samples.drain(..) {
                let _ = hist.record(s.max(1));
            }
        }
    }
}

/// Handles the complete lines in `pending`, keeping an unfinished tail.
fn consume(pending: &mut Vec<u8>, shared: &Shared, samples: &mut Vec<u64>) {
    let mut start = 0;
    while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
        line_seen(&pending[start..start + end], shared, samples);
        start += end + 1;
    }
    pending.drain(..start);
}

fn line_seen(line: &[u8], shared: &Shared, samples: &mut Vec<u64>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.ends_with(b" joined") {
        shared.joins.fetch_add(1, Relaxed);
        return;
    }
    if find(line, b"* you are in #k").is_some() {
        shared.entered.fetch_add(1, Relaxed);
        return;
    }
    if line.starts_with(b"! ") {
        shared.notices.fetch_add(1, Relaxed);
        return;
    }
    let Some(at) = find(line, b"> m ") else {
        return;
    };
    let mut fields = line[at + 4..].split(|&b| b == b' ');
    let number = |f: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(f?).ok()?.parse().ok() };
    let (Some(sender), Some(_seq), Some(sent)) = (
        number(fields.next()),
        number(fields.next()),
        number(fields.next()),
    ) else {
        return;
    };
    shared.deliveries.fetch_add(1, Relaxed);
    if let Some(count) = shared.per_sender.get(sender as usize) {
        count.fetch_add(1, Relaxed);
    }
    if shared.measuring.load(Relaxed) {
        samples.push(shared.now_us().saturating_sub(sent));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One benchmark message of about `size` bytes (CR LF included).
pub fn message(sender: usize, seq: u64, sent_us: u64, size: usize) -> Vec<u8> {
    let mut line = format!("m {sender} {seq} {sent_us} ").into_bytes();
    while line.len() + 2 < size {
        line.push(b'x');
    }
    line.extend_from_slice(b"\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_back() {
        let shared = Shared::new(3);
        let m = message(2, 7, 0, 64);
        assert_eq!(m.len(), 64);
        let mut line = b"[12:00:00] <b2> ".to_vec();
        line.extend_from_slice(&m[..m.len() - 1]);
        let mut samples = Vec::new();
        line_seen(&line, &shared, &mut samples);
        assert_eq!(shared.deliveries.load(Relaxed), 1);
        assert_eq!(shared.per_sender[2].load(Relaxed), 1);
        line_seen(b"* b9 joined\r", &shared, &mut samples);
        assert_eq!(shared.joins.load(Relaxed), 1);
    }
}
