//! natterctl: the operator's command line for a running natterd. Sends one request over the
//! admin socket and prints the reply.
//!
//! Exit codes: 0 success, 1 natterd refused, 2 usage error, 3 natterd can't be reached,
//! 4 no answer in time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use natter::admin::client::{self, ClientError};
use natter::admin::proto::{
    self, AdminCommand, BanReply, BansReply, ListReply, MuteReply, ReloadReply, RoomsReply,
    StatsReply,
};
use natter::admin::socket_path;
use natter::{config, events};
use serde_json::{Map, Value};

mod display;

/// Control a running natterd: list, kick, ban, mute, watch, broadcast, reload, shut down.
#[derive(Parser)]
#[command(name = "natterctl", version, about)]
struct Args {
    /// Find the admin socket through this natter.toml ([admin] socket).
    #[arg(long, value_name = "PATH", conflicts_with = "socket")]
    config: Option<PathBuf>,
    /// The admin socket to use (default: where natterd puts it).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print natterd's JSON reply as it is (for watch: one JSON event per line).
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    #[command(subcommand)]
    command: AdminCommand,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let path = match (&args.socket, &args.config) {
        (Some(socket), _) => socket.clone(),
        (None, Some(file)) => match config::load(file) {
            Ok(config) => socket_path(&config),
            Err(errors) => {
                for error in errors {
                    eprintln!("natterctl: {error}");
                }
                return ExitCode::from(2);
            }
        },
        (None, None) => natter::admin::default_socket_path(),
    };
    let command = args.command;
    let Ok(timeout) = Duration::try_from_secs_f64(args.timeout) else {
        eprintln!("natterctl: --timeout must be a positive number of seconds");
        return ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        eprintln!("natterctl: cannot start");
        return ExitCode::FAILURE;
    };
    let exchange = if command == AdminCommand::Watch {
        runtime.block_on(watch(&path, timeout, args.json))
    } else {
        runtime.block_on(client::request(&path, &command, timeout))
    };
    let line = match exchange {
        Ok(line) => line,
        Err(ClientError::Unreachable(message)) => {
            eprintln!("natterctl: {message}");
            return ExitCode::from(3);
        }
        Err(ClientError::NoAnswer(message)) => {
            eprintln!("natterctl: {message}");
            return ExitCode::from(4);
        }
    };
    let reply = proto::parse_response(&line);
    if args.json && command != AdminCommand::Watch {
        println!("{line}");
    }
    match reply {
        Ok(fields) => {
            if !args.json {
                print!("{}", display::shown(&human(&command, fields)));
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("natterctl: {}", display::shown(&failure.message));
            for detail in failure.details {
                eprintln!("  {}", display::shown(&detail));
            }
            ExitCode::from(1)
        }
    }
}

/// Prints events until natterd ends the stream; returns natterd's last line (or its
/// refusal), for the exit code.
async fn watch(
    path: &std::path::Path,
    timeout: Duration,
    json: bool,
) -> Result<String, ClientError> {
    let mut first = None;
    let mut refused = false;
    client::watch(path, timeout, |line| {
        if first.is_none() {
            refused = proto::parse_response(line).is_err();
            first = Some(line.to_owned());
            if !refused && !json {
                println!("watching natterd at {} (Ctrl-C to stop)", path.display());
            }
            if refused || !json {
                return;
            }
        }
        if json {
            println!("{line}");
        } else {
            println!("{}", display::shown(&events::human(line)));
        }
    })
    .await?;
    if !refused {
        eprintln!("natterctl: natterd closed the watch");
    }
    Ok(first.unwrap_or_default())
}

/// The reply to `command` for a person to read.
fn human(command: &AdminCommand, fields: Map<String, Value>) -> String {
    let value = Value::Object(fields);
    let parse = |what| format!("natterd's {what} reply was unreadable\n");
    match command {
        AdminCommand::List { .. } => serde_json::from_value::<ListReply>(value)
            .map_or_else(|_| parse("list"), |r| display::list_table(&r)),
        AdminCommand::Rooms => serde_json::from_value::<RoomsReply>(value)
            .map_or_else(|_| parse("rooms"), |r| display::rooms_table(&r)),
        AdminCommand::Topic { .. } => match value["topic"].as_str() {
            Some(topic) => format!(
                "topic of {} set: {topic}\n",
                value["room"].as_str().unwrap_or("?")
            ),
            None => format!(
                "topic of {} cleared\n",
                value["room"].as_str().unwrap_or("?")
            ),
        },
        AdminCommand::Stats => serde_json::from_value::<StatsReply>(value)
            .map_or_else(|_| parse("stats"), |r| display::stats_lines(&r)),
        AdminCommand::Reload => serde_json::from_value::<ReloadReply>(value)
            .map_or_else(|_| parse("reload"), |r| display::reload_summary(&r)),
        AdminCommand::Kick { .. } => format!("kicked {}\n", value["nick"].as_str().unwrap_or("?")),
        AdminCommand::Wall { .. } => format!("sent to {} user(s)\n", value["recipients"]),
        AdminCommand::Shutdown { .. } => "natterd is shutting down\n".to_owned(),
        AdminCommand::ReopenLogs => "log file reopened\n".to_owned(),
        AdminCommand::Ban { .. } => serde_json::from_value::<BanReply>(value)
            .map_or_else(|_| parse("ban"), |r| display::ban_summary(&r)),
        AdminCommand::Unban { .. } => {
            format!("unbanned {}\n", value["target"].as_str().unwrap_or("?"))
        }
        AdminCommand::Bans => serde_json::from_value::<BansReply>(value)
            .map_or_else(|_| parse("bans"), |r| display::bans_table(&r)),
        AdminCommand::Mute { .. } => serde_json::from_value::<MuteReply>(value)
            .map_or_else(|_| parse("mute"), |r| display::mute_summary(&r)),
        AdminCommand::Unmute { .. } => {
            format!("unmuted {}\n", value["nick"].as_str().unwrap_or("?"))
        }
        AdminCommand::Watch => String::new(),
    }
}
