//! natter-bench: load generator for natterd, like redis-benchmark. Logs clients in to a
//! running natterd and measures fan-out throughput, latency, CPU and memory.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bench::{FanoutReport, Load, Natterd, chart};

mod bench;

/// Load generator for natterd (run natterd with flood control off: [limits] flood_rate = 0).
#[derive(Parser)]
#[command(name = "natter-bench", version, about)]
struct Args {
    /// natterd's address (a loopback address).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// natterd's chat port; repeat it to spread the clients over the nodes of a cluster
    /// (client i goes to port i mod n).
    #[arg(long, default_values_t = [2323])]
    port: Vec<u16>,
    /// More processes whose CPU time to report (the other nodes, nats-server); repeatable.
    #[arg(long)]
    also_pid: Vec<u32>,
    /// Spread clients over this many source addresses 127.0.0.1, 127.0.0.2, ...
    #[arg(long, default_value_t = 1)]
    sources: usize,
    /// natterd's pid, to report its CPU time and memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// natterd's `[chat] announce_max`, so the bench waits for the right number of join lines.
    #[arg(long, default_value_t = 0)]
    announce_max: usize,
    /// Stop after this many seconds, whatever happens.
    #[arg(long, default_value_t = 300)]
    time_limit: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Hold N idle logged-in clients; report login time and memory per connection.
    Conns {
        /// Clients.
        #[arg(short)]
        n: usize,
        /// Seconds to hold them after logging in.
        #[arg(long, default_value_t = 0)]
        hold: u64,
    },
    /// S of N clients send, everyone reads: deliveries/s, latency, CPU.
    Fanout(FanoutArgs),
    /// Like fanout, with K clients that never read.
    Slowreader {
        #[command(flatten)]
        fanout: FanoutArgs,
        /// Clients that never read.
        #[arg(short, default_value_t = 1)]
        k: usize,
    },
    /// Fanout at several client counts, several runs each; prints medians and can draw a chart.
    Sweep {
        /// Client counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,250,500,1000")]
        clients: Vec<usize>,
        /// Sending clients.
        #[arg(short, default_value_t = 10)]
        s: usize,
        /// Seconds each run measures.
        #[arg(short, default_value_t = 5)]
        d: u64,
        /// Runs per point.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Message size in bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Write an SVG chart here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct FanoutArgs {
    /// Clients.
    #[arg(short)]
    n: usize,
    /// Sending clients.
    #[arg(short, default_value_t = 10)]
    s: usize,
    /// Messages per second in total (default: as fast as a bounded window allows).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to measure.
    #[arg(short, default_value_t = 10)]
    d: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Spread the clients evenly over this many rooms (each joins `#k<run>r<i % rooms>`);
    /// sender s talks in room s % rooms. 1: everyone in the lobby.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
}

impl FanoutArgs {
    fn load(self, deaf: usize) -> Load {
        Load {
            clients: self.n,
            senders: self.s,
            rate: self.rate,
            duration: Duration::from_secs(self.d),
            size: self.size.max(32),
            deaf,
            rooms: self.rooms.max(1),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let target = Natterd {
        servers: args
            .port
            .iter()
            .map(|&port| SocketAddr::new(args.host, port))
            .collect(),
        also: args.also_pid.clone(),
        sources: args.sources.max(1),
        pid: args.pid,
        progress: true,
        announce_max: args.announce_max,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("natter-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limit = Duration::from_secs(args.time_limit);
    let result = runtime.block_on(async {
        match tokio::time::timeout(limit, run(&target, args.scenario, args.json)).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "time limit of {} s reached",
                args.time_limit
            )),
        }
    });
    // Clients may still be open; leave without waiting for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(target: &Natterd, scenario: Scenario, json: bool) -> anyhow::Result<()> {
    match scenario {
        Scenario::Conns { n, hold } => {
            let r = bench::conns(target, n, Duration::from_secs(hold)).await?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("clients:              {}", r.clients);
                println!(
                    "logged in, announced: {:.2} s{}",
                    r.login_secs,
                    if r.settled {
                        ""
                    } else {
                        " (NOT all join lines arrived)"
                    }
                );
                if let (Some(b), Some(a), Some(per)) =
                    (r.rss_before_kb, r.rss_after_kb, r.bytes_per_connection)
                {
                    println!("natterd RSS:          {b} KiB -> {a} KiB");
                    println!("per connection:       {per} bytes");
                }
            }
        }
        Scenario::Fanout(f) => print(&bench::fanout(target, f.load(0)).await?, json)?,
        Scenario::Slowreader { fanout, k } => {
            print(&bench::fanout(target, fanout.load(k)).await?, json)?
        }
        Scenario::Sweep {
            clients,
            s,
            d,
            runs,
            size,
            svg,
        } => {
            let mut points = Vec::new();
            let mut rows = Vec::new();
            for &n in &clients {
                let (mut rates, mut p99s, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..runs {
                    let load = Load {
                        clients: n,
                        senders: s,
                        rate: None,
                        duration: Duration::from_secs(d),
                        size,
                        deaf: 0,
                        rooms: 1,
                    };
                    let r = bench::fanout(target, load).await?;
                    // Let the last room's clients leave before the next fills up.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    rates.push(r.deliveries_per_sec);
                    p99s.push(r.p99_ms);
                    cpus.extend(r.cpu_s_per_million);
                }
                let row = (
                    n,
                    bench::median(&mut rates),
                    bench::median(&mut p99s),
                    (!cpus.is_empty()).then(|| bench::median(&mut cpus)),
                );
                eprintln!(
                    "{n} clients: {:.0} deliveries/s, p99 {:.2} ms",
                    row.1, row.2
                );
                points.push((row.0, row.1, row.2));
                rows.push(row);
            }
            if json {
                let out: Vec<_> = rows.iter().map(|r| serde_json::json!({"clients": r.0, "deliveries_per_sec": r.1, "p99_ms": r.2, "cpu_s_per_million": r.3})).collect();
                println!("{}", serde_json::to_string(&out)?);
            } else {
                println!(
                    "| clients | deliveries/s (median of {runs}) | p99 ms (median) | CPU-s per million deliveries (median) |"
                );
                println!("|---|---|---|---|");
                for r in &rows {
                    let cpu = r.3.map_or("-".to_owned(), |c| format!("{c:.3}"));
                    println!("| {} | {:.0} | {:.2} | {cpu} |", r.0, r.1, r.2);
                }
            }
            if let Some(path) = svg {
                let title = format!(
                    "natterd fan-out: {s} senders, {size}-byte messages, medians of {runs} runs"
                );
                std::fs::write(&path, chart::svg(&points, &title))?;
            }
        }
    }
    Ok(())
}

fn print(r: &FanoutReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "clients:           {} ({} sending, {} never reading) in {} room(s)",
        r.clients, r.senders, r.deaf, r.rooms
    );
    println!("sent:              {} messages", r.sent);
    let lost = r.expected.saturating_sub(r.received);
    println!(
        "deliveries:        {} of {} expected ({} lost)",
        r.received, r.expected, lost
    );
    println!("deliveries/s:      {:.0}", r.deliveries_per_sec);
    println!(
        "latency ms:        p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        r.p50_ms, r.p99_ms, r.p999_ms, r.max_ms
    );
    if let Some(cpu) = r.cpu_s_per_million {
        println!("natterd CPU:       {cpu:.3} s per million deliveries");
    }
    for (pid, cpu) in &r.also_cpu_s_per_million {
        println!("pid {pid} CPU:      {cpu:.3} s per million deliveries");
    }
    if !r.rss_kb.is_empty() {
        let rss: Vec<String> = r.rss_kb.iter().map(|k| format!("{}", k / 1024)).collect();
        println!("natterd RSS MiB:   {}", rss.join(" "));
    }
    println!("readers dropped:   {}", r.readers_dropped);
    for (i, c) in r.slow.iter().enumerate() {
        let state = if c.closed {
            "closed by natterd"
        } else {
            "still connected"
        };
        println!(
            "never reading #{}:  {state}; {} bytes were waiting; told {} messages skipped{}",
            i + 1,
            c.bytes_waiting,
            c.skipped,
            c.last_notice
                .as_deref()
                .map(|n| format!("; last notice {n:?}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
