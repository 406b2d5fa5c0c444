//! natter-bench: the load generator. Logs N clients in to a running natterd, waits for the
//! join announcements to settle, then runs a scenario and reports what it measured.

pub mod chart;
pub mod client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Semaphore;

use client::Shared;

/// Logins in flight at once.
const CONNECT_CONCURRENCY: usize = 256;
/// The send window with no `--rate`: messages per sender not yet delivered everywhere.
const WINDOW: u64 = 32;
/// Measuring starts after this much sending.
const WARMUP: Duration = Duration::from_secs(1);

/// The natterd under test: where it listens and how to reach it.
#[derive(Debug, Clone)]
pub struct Natterd {
    /// natterd's chat addresses: one, or the nodes of a cluster (client i goes to i mod n).
    pub servers: Vec<SocketAddr>,
    /// Other processes whose CPU time is reported (other nodes, nats-server).
    pub also: Vec<u32>,
    /// Loopback source addresses to spread clients over (127.0.0.1 ..).
    pub sources: usize,
    /// natterd's pid, for its CPU time and memory.
    pub pid: Option<u32>,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// natterd's `[chat] announce_max` (0: every join is announced), so the bench knows
    /// how many join lines to wait for.
    pub announce_max: usize,
}

/// A room of logged-in bench clients.
pub struct Room {
    /// Write halves, by client index.
    pub writers: Vec<OwnedWriteHalf>,
    /// Read halves of clients that never read (slow-reader scenario).
    pub idle_readers: Vec<OwnedReadHalf>,
    /// Everyone's counters.
    pub shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// How long logging in took, announcements included.
    pub login_time: Duration,
    /// Whether every expected join line arrived.
    pub settled: bool,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// Logs in `n` clients named `r<room>b0..`; the last `deaf` of them never read. Waits until every
/// reading client has seen every later client's join line.
pub async fn fill(target: &Natterd, n: usize, senders: usize, deaf: usize) -> anyhow::Result<Room> {
    let shared = Shared::new(senders);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let bar = bar(target, n as u64, "logging in");
    let readers = n - deaf;
    let mut writers: Vec<Option<OwnedWriteHalf>> = (0..n).map(|_| None).collect();
    let mut idle_readers = Vec::new();
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    // Rooms in one run (a sweep) get their own names: the last room's clients may still
    // be leaving.
    static ROOMS: AtomicU64 = AtomicU64::new(0);
    let room = ROOMS.fetch_add(1, Relaxed);
    // Readers first, then the clients that never read, so those are told of nobody
    // after them but each other.
    for (range, reading) in [(0..readers, true), (readers..n, false)] {
        let mut logins = tokio::task::JoinSet::new();
        for i in range {
            let permit = gate.clone().acquire_owned().await?;
            let server = target.servers[i % target.servers.len()];
            let bind = client::source(i, target.sources, server.ip());
            logins.spawn(async move {
                let result = client::login(server, bind, &format!("r{room}b{i}")).await;
                drop(permit);
                (i, result)
            });
        }
        while let Some(joined) = logins.join_next().await {
            let (i, result) = joined?;
            let (read, write, rest) = result.with_context(|| format!("client b{i}"))?;
            writers[i] = Some(write);
            if reading {
                tokio::spawn(client::read_loop(read, rest, shared.clone(), stop.clone()));
            } else {
                idle_readers.push(read);
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let expected = expected_joins(n, deaf, target.announce_max);
    // Bounded by the run's --time-limit as well.
    let settled = wait_for(
        || shared.joins.load(Relaxed) >= expected,
        Duration::from_secs(600),
    )
    .await;
    Ok(Room {
        writers: writers.into_iter().map(|w| w.expect("logged in")).collect(),
        idle_readers,
        shared,
        stop,
        login_time: started.elapsed(),
        settled,
    })
}

/// Moves client i to room i % `rooms` and waits until all are in.
async fn spread(room: &mut Room, rooms: usize) -> anyhow::Result<()> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run = RUNS.fetch_add(1, Relaxed);
    for (i, writer) in room.writers.iter_mut().enumerate() {
        let line = format!("/join #k{run}r{}\r\n", i % rooms);
        writer.write_all(line.as_bytes()).await?;
    }
    let n = room.writers.len() as u64;
    let shared = room.shared.clone();
    if !wait_for(
        || shared.entered.load(Relaxed) >= n,
        Duration::from_secs(600),
    )
    .await
    {
        bail!("not every client reached its room");
    }
    Ok(())
}

/// Join lines the reading clients of a room of `n` receive, the last `deaf` never reading.
/// Each pair of announced clients yields one join line, seen by the earlier of the two;
/// only the first `announce_max` logins are announced (0: all); joins among the deaf
/// clients are never read.
fn expected_joins(n: usize, deaf: usize, announce_max: usize) -> u64 {
    let announced = if announce_max == 0 {
        n
    } else {
        n.min(announce_max)
    };
    let deaf_announced = announced.saturating_sub(n - deaf);
    let pairs = |k: usize| k * k.saturating_sub(1) / 2;
    (pairs(announced) - pairs(deaf_announced)) as u64
}

/// Polls `done` until true or `limit` passes; says whether it became true.
async fn wait_for(done: impl Fn() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

fn bar(target: &Natterd, len: u64, what: &'static str) -> ProgressBar {
    if !target.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// natterd's resident memory, KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches(" kB").trim().parse().ok()
}

/// natterd's CPU time so far (user + system), seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// What `conns` measured.
#[derive(Debug, Serialize)]
pub struct ConnsReport {
    /// Clients logged in.
    pub clients: usize,
    /// Seconds from the first connect until every join line arrived.
    pub login_secs: f64,
    /// Whether every join line arrived.
    pub settled: bool,
    /// natterd's RSS before connecting, KiB.
    pub rss_before_kb: Option<u64>,
    /// natterd's RSS with everyone logged in, KiB.
    pub rss_after_kb: Option<u64>,
    /// (after - before) / clients, bytes.
    pub bytes_per_connection: Option<u64>,
}

/// Holds `n` idle logged-in clients for `hold`.
pub async fn conns(target: &Natterd, n: usize, hold: Duration) -> anyhow::Result<ConnsReport> {
    let before = target.pid.and_then(rss_kb);
    let room = fill(target, n, 0, 0).await?;
    // natterd's allocator hands the announcement storm's memory back over a few seconds:
    // sample until RSS stops falling (at most 15 s) and take the settled figure.
    let mut after = target.pid.and_then(rss_kb);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = target.pid.and_then(rss_kb);
        match (after, now) {
            (Some(prev), Some(now)) if now + prev / 100 < prev => after = Some(now),
            (_, now) => {
                after = now.or(after);
                break;
            }
        }
    }
    let report = ConnsReport {
        clients: n,
        login_secs: room.login_time.as_secs_f64(),
        settled: room.settled,
        rss_before_kb: before,
        rss_after_kb: after,
        bytes_per_connection: before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) * 1024 / n.max(1) as u64),
    };
    tokio::time::sleep(hold).await;
    Ok(report)
}

/// How `fanout` sends.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Clients in the room.
    pub clients: usize,
    /// Of them, how many send.
    pub senders: usize,
    /// Messages per second in total; None: as fast as the window allows.
    pub rate: Option<f64>,
    /// Seconds to measure.
    pub duration: Duration,
    /// Message size in bytes, CR LF included.
    pub size: usize,
    /// Clients that never read (slow-reader scenario).
    pub deaf: usize,
    /// Rooms the clients are spread over (1: all in the lobby).
    pub rooms: usize,
}

/// What `fanout` and `slowreader` measured.
#[derive(Debug, Serialize)]
pub struct FanoutReport {
    /// Clients, senders, clients that never read.
    pub clients: usize,
    /// Sending clients.
    pub senders: usize,
    /// Rooms they were spread over.
    pub rooms: usize,
    /// Clients that never read.
    pub deaf: usize,
    /// Messages sent in all (warm-up included).
    pub sent: u64,
    /// Deliveries expected for them (sent × reading recipients).
    pub expected: u64,
    /// Deliveries received, once what was in flight had arrived.
    pub received: u64,
    /// Deliveries per second while measuring.
    pub deliveries_per_sec: f64,
    /// Send-to-receipt latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Worst.
    pub max_ms: f64,
    /// natterd CPU seconds per million deliveries.
    pub cpu_s_per_million: Option<f64>,
    /// natterd RSS once a second while measuring, KiB.
    pub rss_kb: Vec<u64>,
    /// CPU seconds per million deliveries of each `--also-pid` process.
    pub also_cpu_s_per_million: Vec<(u32, f64)>,
    /// Reading clients natterd disconnected.
    pub readers_dropped: u64,
    /// What became of each client that never read, found by reading it after the run.
    pub slow: Vec<SlowClient>,
}

/// A client that never read, as it stood after the run.
#[derive(Debug, Default, Serialize)]
pub struct SlowClient {
    /// Bytes it could still read: what natterd had queued plus the kernel's buffers.
    pub bytes_waiting: u64,
    /// Group messages natterd told it were skipped (`! N messages skipped ...`).
    pub skipped: u64,
    /// natterd had closed the connection.
    pub closed: bool,
    /// The last `! ` line it got, if any.
    pub last_notice: Option<String>,
}

/// Reads what a client that never read was sent, until natterd closes it or goes quiet.
async fn inspect(mut read: OwnedReadHalf) -> SlowClient {
    use tokio::io::AsyncReadExt;
    let mut out = SlowClient::default();
    let mut buf = vec![0; 64 * 1024];
    let mut partial = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = match tokio::time::timeout(Duration::from_millis(500), read.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => {
                out.closed = true;
                break;
            }
            Ok(Ok(n)) => n,
        };
        out.bytes_waiting += n as u64;
        partial.extend_from_slice(&buf[..n]);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            if let Some(rest) = line.strip_prefix("! ") {
                if let Some((count, _)) = rest.split_once(" messages skipped") {
                    out.skipped += count.parse::<u64>().unwrap_or(0);
                }
                out.last_notice = Some(line);
            }
        }
    }
    out
}

/// Runs a fan-out: senders send, everyone reads (but the deaf), for `load.duration`.
pub async fn fanout(target: &Natterd, load: Load) -> anyhow::Result<FanoutReport> {
    if load.senders == 0 || load.senders + load.deaf > load.clients {
        bail!("need 1 to clients - deaf senders");
    }
    if load.rooms > 1
        && (load.deaf > 0
            || !load.clients.is_multiple_of(load.rooms)
            || load.clients < 2 * load.rooms)
    {
        bail!(
            "with --rooms, clients must be a multiple of rooms, at least two per room, none deaf"
        );
    }
    let mut room = fill(target, load.clients, load.senders, load.deaf).await?;
    if load.rooms > 1 {
        spread(&mut room, load.rooms).await?;
    }
    let shared = room.shared.clone();
    let recipients = (load.clients / load.rooms - load.deaf - 1) as u64;
    let run = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (s, mut writer) in room.writers.drain(..load.senders).enumerate() {
        let (shared, run, sent) = (shared.clone(), run.clone(), sent.clone());
        let interval = load
            .rate
            .map(|r| Duration::from_secs_f64(load.senders as f64 / r.max(0.001)));
        // Paced senders take turns, evenly spaced, rather than all sending at the same
        // instant: 200 messages/s from 10 senders is one message every 5 ms, not a burst
        // of 10 every 50 ms.
        let offset = interval.map_or(Duration::ZERO, |every| {
            every.mul_f64(s as f64 / load.senders as f64)
        });
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            let mut next = Instant::now() + offset;
            while run.load(Relaxed) {
                match interval {
                    Some(every) => {
                        next += every;
                        tokio::time::sleep_until(next.into()).await;
                    }
                    None => {
                        // Keep at most WINDOW messages not yet delivered everywhere.
                        while run.load(Relaxed)
                            && shared.per_sender[s].load(Relaxed) + WINDOW * recipients
                                < seq * recipients
                        {
                            tokio::task::yield_now().await;
                        }
                    }
                }
                let line = client::message(s, seq, shared.now_us(), load.size);
                if writer.write_all(&line).await.is_err() {
                    break;
                }
                seq += 1;
                sent.fetch_add(1, Relaxed);
            }
            writer
        }));
    }
    let bar = bar(target, load.duration.as_secs(), "sending");
    tokio::time::sleep(WARMUP).await;
    let cpu_start = target.pid.and_then(cpu_secs);
    let also_start: Vec<Option<f64>> = target.also.iter().map(|&p| cpu_secs(p)).collect();
    let delivered_start = shared.deliveries.load(Relaxed);
    shared.measuring.store(true, Relaxed);
    let measure_start = Instant::now();
    let mut rss = Vec::new();
    while measure_start.elapsed() < load.duration {
        tokio::time::sleep(Duration::from_secs(1).min(load.duration)).await;
        rss.extend(target.pid.and_then(rss_kb));
        bar.set_position(measure_start.elapsed().as_secs());
    }
    shared.measuring.store(false, Relaxed);
    let elapsed = measure_start.elapsed().as_secs_f64();
    let delivered = shared.deliveries.load(Relaxed) - delivered_start;
    let cpu_end = target.pid.and_then(cpu_secs);
    let per_million = |a: f64, b: f64| (b - a) / (delivered.max(1) as f64 / 1e6);
    let also_cpu_s_per_million = target
        .also
        .iter()
        .zip(also_start)
        .filter_map(|(&pid, start)| Some((pid, per_million(start?, cpu_secs(pid)?))))
        .collect();
    run.store(false, Relaxed);
    bar.finish_and_clear();
    for task in tasks {
        room.writers.push(task.await?);
    }
    // Let what is in flight arrive, then compare.
    let sent = sent.load(Relaxed);
    let mut last = shared.deliveries.load(Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = shared.deliveries.load(Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let mut slow = Vec::new();
    for read in room.idle_readers.drain(..) {
        slow.push(inspect(read).await);
    }
    let hist = shared.latency.lock().await;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(FanoutReport {
        clients: load.clients,
        senders: load.senders,
        deaf: load.deaf,
        rooms: load.rooms,
        sent,
        expected: sent * recipients,
        received: shared.deliveries.load(Relaxed),
        deliveries_per_sec: delivered as f64 / elapsed,
        p50_ms: ms(hist.value_at_quantile(0.5)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        p999_ms: ms(hist.value_at_quantile(0.999)),
        max_ms: ms(hist.max()),
        cpu_s_per_million: cpu_start
            .zip(cpu_end)
            .map(|(a, b)| (b - a) / (delivered.max(1) as f64 / 1e6)),
        rss_kb: rss,
        also_cpu_s_per_million,
        readers_dropped: shared.closed.load(Relaxed),
        slow,
    })
}

/// The median of `values`.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::expected_joins;

    #[test]
    fn join_lines_expected() {
        assert_eq!(expected_joins(4, 0, 0), 6);
        assert_eq!(expected_joins(4, 1, 0), 6);
        assert_eq!(expected_joins(4, 2, 0), 5);
        assert_eq!(expected_joins(10, 0, 4), 6);
        assert_eq!(expected_joins(10, 2, 4), 6);
        assert_eq!(expected_joins(4, 2, 3), 3);
        assert_eq!(expected_joins(4, 2, 4), 5);
    }
}
