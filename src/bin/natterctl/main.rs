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
use natter::admin::proto::{
    self, AdminCommand, BanReply, BansReply, ListReply, MuteReply, ReloadReply, StatsReply,
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
    /// Ban an address, a CIDR range (IPv4 or IPv6) or a nickname; matching users are
    /// disconnected at once. Bans are kept across restarts.
    Ban {
        /// 192.0.2.7, 192.0.2.0/24, 2001:db8::/32 or a nickname.
        target: String,
        /// How long, e.g. 30s, 10m, 2h, 7d (default: until lifted).
        #[arg(long = "for", value_name = "DURATION", value_parser = duration)]
        duration: Option<Duration>,
        /// Why, shown to the banned user and to everyone else.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a ban.
    Unban {
        /// As given to ban.
        target: String,
    },
    /// Bans and mutes in force: target, reason, set by (uid), set at, expires.
    Bans,
    /// Stop a nickname from sending (it can still read), across reconnects.
    Mute {
        /// The nickname (any case).
        nick: String,
        /// How long, e.g. 30s, 10m, 2h, 7d (default: until lifted).
        #[arg(long = "for", value_name = "DURATION", value_parser = duration)]
        duration: Option<Duration>,
        /// Why, shown to the muted user.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a mute.
    Unmute {
        /// The nickname.
        nick: String,
    },
    /// Print live events (joins, leaves, kicks, bans, mutes, reports, flood and slow
    /// readers, reloads) until interrupted.
    Watch,
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
    let command = AdminCommand::from(args.command);
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

/// The command line's command as the request natterd reads.
impl From<Cmd> for AdminCommand {
    fn from(cmd: Cmd) -> AdminCommand {
        match cmd {
            Cmd::List => AdminCommand::List,
            Cmd::Kick { nick, reason } => AdminCommand::Kick { nick, reason },
            Cmd::Wall { text } => AdminCommand::Wall {
                text: text.join(" "),
            },
            Cmd::Stats => AdminCommand::Stats,
            Cmd::Reload => AdminCommand::Reload,
            Cmd::ReopenLogs => AdminCommand::ReopenLogs,
            Cmd::Shutdown { message } => AdminCommand::Shutdown { message },
            Cmd::Ban {
                target,
                duration,
                reason,
            } => AdminCommand::Ban {
                target,
                for_secs: duration.map(|d| d.as_secs()),
                reason,
            },
            Cmd::Unban { target } => AdminCommand::Unban { target },
            Cmd::Bans => AdminCommand::Bans,
            Cmd::Mute {
                nick,
                duration,
                reason,
            } => AdminCommand::Mute {
                nick,
                for_secs: duration.map(|d| d.as_secs()),
                reason,
            },
            Cmd::Unmute { nick } => AdminCommand::Unmute { nick },
            Cmd::Watch => AdminCommand::Watch,
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

/// A duration such as `90s`, `10m`, `2h` or `7d`.
fn duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 30s, 10m, 2h, 7d)"))?;
    if d.as_secs() == 0 {
        return Err("must be at least one second".into());
    }
    if d > natter::moderation::MAX_DURATION {
        return Err("must be at most 10 years (leave it out for no end)".into());
    }
    Ok(d)
}

/// The reply to `command` for a person to read.
fn human(command: &AdminCommand, fields: Map<String, Value>) -> String {
    let value = Value::Object(fields);
    let parse = |what| format!("natterd's {what} reply was unreadable\n");
    match command {
        AdminCommand::List => serde_json::from_value::<ListReply>(value)
            .map_or_else(|_| parse("list"), |r| display::list_table(&r)),
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
