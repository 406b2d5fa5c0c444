//! natterd: the chat daemon. Parses arguments, loads the configuration, starts logging,
//! binds the listeners and hands them to [`natter::server::run`].

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use natter::config::{self, Config};
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
    if !args.listen.is_empty() {
        config.server.listen = args.listen;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natterd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    use anyhow::Context;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let mut listeners = Vec::new();
        for &addr in &config.server.listen {
            let listener =
                natter::server::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
            listeners.push(listener);
        }
        natter::server::run(listeners, config, std::future::pending()).await;
        Ok(())
    })
}
