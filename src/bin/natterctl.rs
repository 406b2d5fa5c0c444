//! natterctl: the operator's command line for a running natterd. Sends one request over the
//! admin socket and prints the reply.
//!
//! Exit codes: 0 success, 1 natterd refused, 2 usage error, 3 natterd can't be reached,
//! 4 no answer in time.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use natter::admin::client::{self, ClientError};
use natter::admin::proto::{self, Command, ListReply, ReloadReply, StatsReply};
use natter::admin::{display, socket_path};
use natter::config;
use serde_json::{Map, Value};

/// Control a running natterd: list, kick, broadcast, reload, shut down.
#[derive(Parser)]
#[command(name = "natterctl", version, about)]
struct Args {
    /// Find the admin socket through this natter.toml ([admin] socket).
    #[arg(long, value_name = "PATH", conflicts_with = "socket")]
    config: Option<PathBuf>,
    /// The admin socket to use (default: where natterd puts it).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print natterd's JSON reply as it is.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every connection: nick, address, idle time, traffic, queue.
    List,
    /// Disconnect a user; they and everyone else are told.
    Kick {
        /// The user's nickname (any case).
        nick: String,
        /// Why, shown to everyone.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send "* [server] TEXT" to every user.
    Wall {
        /// The announcement.
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Counters since start.
    Stats,
    /// Re-read the configuration file.
    Reload,
    /// Reopen the log file (after logrotate moved it).
    ReopenLogs,
    /// Shut natterd down gracefully.
    Shutdown {
        /// Added to the notice users get.
        #[arg(long)]
        message: Option<String>,
    },
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
    let command = match args.command {
        Cmd::List => Command::List,
        Cmd::Kick { nick, reason } => Command::Kick { nick, reason },
        Cmd::Wall { text } => Command::Wall {
            text: text.join(" "),
        },
        Cmd::Stats => Command::Stats,
        Cmd::Reload => Command::Reload,
        Cmd::ReopenLogs => Command::ReopenLogs,
        Cmd::Shutdown { message } => Command::Shutdown { message },
    };
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
    let line = match runtime.block_on(client::request(&path, &command, timeout)) {
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
    if args.json {
        println!("{line}");
    }
    match reply {
        Ok(fields) => {
            if !args.json {
                print!("{}", human(&command, fields));
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("natterctl: {}", failure.message);
            for detail in failure.details {
                eprintln!("  {detail}");
            }
            ExitCode::from(1)
        }
    }
}

/// The reply to `command` for a person to read.
fn human(command: &Command, fields: Map<String, Value>) -> String {
    let value = Value::Object(fields);
    let parse = |what| format!("natterd's {what} reply was unreadable\n");
    match command {
        Command::List => serde_json::from_value::<ListReply>(value)
            .map_or_else(|_| parse("list"), |r| display::list_table(&r)),
        Command::Stats => serde_json::from_value::<StatsReply>(value)
            .map_or_else(|_| parse("stats"), |r| display::stats_lines(&r)),
        Command::Reload => serde_json::from_value::<ReloadReply>(value)
            .map_or_else(|_| parse("reload"), |r| display::reload_summary(&r)),
        Command::Kick { .. } => format!("kicked {}\n", value["nick"].as_str().unwrap_or("?")),
        Command::Wall { .. } => format!("sent to {} user(s)\n", value["recipients"]),
        Command::Shutdown { .. } => "natterd is shutting down\n".to_owned(),
        Command::ReopenLogs => "log file reopened\n".to_owned(),
    }
}
