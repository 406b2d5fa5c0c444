//! natterctl: the operator's command line for a running natterd.

use std::process::ExitCode;

use clap::Parser;

/// Control a running natterd (list, kick, broadcast, reload, shut down).
#[derive(Parser)]
#[command(name = "natterctl", version, about)]
struct Args {}

fn main() -> ExitCode {
    let _args = Args::parse();
    eprintln!("natterctl: not yet: the admin commands arrive with the admin socket");
    ExitCode::from(2)
}
