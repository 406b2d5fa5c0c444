//! natterd: the chat daemon. Parses arguments, loads the configuration, starts logging,
//! binds the admin socket and the listeners, and hands them to the library until shutdown.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use natter::config::{self, Config};
use natter::daemon::Daemon;
use natter::{admin, server, signals};
use tracing::info;
use tracing_subscriber::EnvFilter;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match serve(config, args.config, listen_override) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natterd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    config: Config,
    source: Option<PathBuf>,
    listen_override: Vec<SocketAddr>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let signals = signals::listen().context("cannot install signal handlers")?;
        // The admin socket first: it is what tells us another natterd is running.
        let admin = admin::bind(&admin::socket_path(&config), config.admin.mode_bits())?;
        let mut listeners = Vec::new();
        for &addr in &config.server.listen {
            let listener =
                server::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
            listeners.push(listener);
        }
        let bound = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        info!(path = %admin.path().display(), "admin socket ready");
        let daemon = Arc::new(Daemon::new(config, source, listen_override, bound));
        tokio::spawn(signals::handle(signals, daemon.clone()));
        let admin = tokio::spawn(admin.serve(daemon.clone()));
        server::run(listeners, daemon).await;
        // Ending the admin task drops the socket, which removes its file.
        let _ = admin.await;
        info!("shutdown complete");
        Ok(())
    })
}
