//! natterd: the chat daemon. Parses arguments, loads the configuration, starts logging,
//! binds the admin socket and the listeners, and hands them to the library until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use natter::cluster::Cluster;
use natter::config::{self, Config};
use natter::daemon::Daemon;
use natter::logging::Logs;
use natter::moderation::Moderation;
use natter::{admin, metrics, server, signals, systemd};
use tokio::net::TcpListener;
use tracing::{error, info};

/// mimalloc hands memory back to the system after a burst (a storm of join lines, a
/// flood of connections), where the system allocator tends to keep it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Plain-text chat for telnet and nc clients.
#[derive(Parser)]
#[command(name = "natterd", version, about)]
struct Args {
    /// Read settings from this TOML file (see config/natter.toml for every key).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Check the configuration and exit: 0 if it is valid, 1 listing every error.
    #[arg(long)]
    check_config: bool,
    /// Listen on ADDR (host:port) instead of [server] listen; may be given several times.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let loaded = match &args.config {
        Some(path) => config::load(path),
        None => Ok(Config::default()),
    };
    let mut config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("configuration invalid: {} error(s)", errors.len());
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let listen_override = args.listen;
    if !listen_override.is_empty() {
        config.server.listen.clone_from(&listen_override);
    }
    let logs = match Logs::init(&config.log) {
        Ok(logs) => Arc::new(logs),
        Err(e) => {
            eprintln!("natterd: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let to_stderr = config.log.stderr;
    let result = serve(config, args.config, listen_override, logs.clone());
    if let Err(e) = &result {
        error!("{e:#}");
        if !to_stderr {
            eprintln!("natterd: {e:#}");
        }
    }
    // Last: flush the log file, which "shutdown complete" ends.
    logs.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn serve(
    config: Config,
    source: Option<PathBuf>,
    listen_override: Vec<SocketAddr>,
    logs: Arc<Logs>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let signals = signals::listen().context("cannot install signal handlers")?;
        let state_dir = config.server.state_dir();
        let moderation = Moderation::open(&state_dir)?;
        let rules = moderation.rules();
        info!(
            path = %moderation.path().display(),
            bans = rules.bans.len(),
            mutes = rules.mutes.len(),
            "bans and mutes loaded"
        );
        // The admin socket first: it is what tells us another natterd is running.
        let admin = admin::bind(&admin::socket_path(&config), config.admin.mode_bits())?;
        let listeners = listeners(&config)?;
        let tls_listeners: Vec<TcpListener> = config
            .tls
            .listen
            .iter()
            .map(|&addr| {
                server::bind(addr).with_context(|| format!("cannot listen for TLS on {addr}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let metrics = metrics::bind(config.metrics.listen)?;
        let bound = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        info!(path = %admin.path().display(), "admin socket ready");
        let daemon = Arc::new(Daemon::new(
            config,
            source,
            listen_override,
            bound,
            logs.clone(),
            moderation,
        ));
        if let Some(cluster) = daemon.config().cluster.clone() {
            let cluster = Cluster::start(&cluster, daemon.clone()).await?;
            let _ = daemon.cluster.set(cluster);
        }
        if let Some(listener) = metrics {
            tokio::spawn(metrics::serve(listener, daemon.clone()));
        }
        tokio::spawn(natter::daemon::expire_rules(daemon.clone()));
        tokio::spawn(signals::handle(signals, daemon.clone()));
        tokio::spawn(logs.watch_dropped());
        let gate = daemon.clone();
        tokio::spawn(async move { gate.log_gate.report_periodically().await });
        tokio::spawn(systemd::watchdog());
        let admin = tokio::spawn(admin.serve(daemon.clone()));
        systemd::ready();
        server::run(listeners, tls_listeners, daemon.clone()).await;
        if let Some(cluster) = daemon.cluster.get() {
            cluster.leave().await;
        }
        // Ending the admin task drops the socket, which removes its file.
        let _ = admin.await;
        info!("shutdown complete");
        Ok(())
    })
}

/// Listeners passed by systemd socket activation if any, else `[server] listen` bound here.
fn listeners(config: &Config) -> anyhow::Result<Vec<TcpListener>> {
    let passed = systemd::passed_listeners().context("cannot use the passed sockets")?;
    if !passed.is_empty() {
        info!(count = passed.len(), "using sockets passed by systemd");
        return passed
            .into_iter()
            .map(|l| TcpListener::from_std(l).context("cannot use a passed socket"))
            .collect();
    }
    config
        .server
        .listen
        .iter()
        .map(|&addr| server::bind(addr).with_context(|| format!("cannot listen on {addr}")))
        .collect()
}
