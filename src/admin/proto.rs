//! The admin protocol, shared by natterd and natterctl: one JSON object per line each way.
//!
//! A request is `{"cmd": "...", ...arguments, "id": any}`; the reply is
//! `{"ok": true, "id": ..., ...data}` or `{"ok": false, "id": ..., "error": {"code", "message"}}`,
//! in request order. [`Framed`] reads and writes those lines over any byte stream.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest request or response line accepted, newline included.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest reply line natterctl reads. Replies grow with what natterd holds (`list` with
/// 100,000 connections is about 30 MB), so this bounds natterctl's memory, not natterd's.
pub const MAX_REPLY: usize = 1 << 30;

pub use crate::daemon::outcome::{
    BanReply, BansReply, Failure, KickReply, MuteReply, ReloadReply, StatsReply, UnbanReply,
    UnmuteReply,
};
pub use crate::hub::{Connection, RoomInfo};

/// What an operator asks natterd to do: the request's wire form (serde, tagged by `cmd`)
/// and natterctl's subcommand (clap) in one type, so a command is declared once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Subcommand)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminCommand {
    /// Every connection: nick, room, address, idle time, traffic, queue.
    List {
        /// Only the users in this room.
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// Every room: name, users, topic, and whether the config or a user made it.
    Rooms,
    /// Set the topic of any room (announced as set by the operators); no TEXT clears it.
    Topic {
        /// The room, e.g. "#rust" or "rust".
        room: String,
        /// The new topic (on the wire, one string; absent: clear).
        #[serde(default, with = "words", skip_serializing_if = "Vec::is_empty")]
        text: Vec<String>,
    },
    /// Disconnect a user; they and everyone else are told.
    Kick {
        /// The user's nickname (any case).
        nick: String,
        /// Why, shown to everyone.
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Send "* [server] TEXT" to every user, or to everyone in one room.
    Wall {
        /// Only this room.
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The announcement (on the wire, one string).
        #[arg(required = true)]
        #[serde(with = "words")]
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
        /// How long, e.g. 30s, 10m, 2h, 7d (default: until lifted; on the wire, seconds).
        #[arg(long = "for", value_name = "DURATION", value_parser = duration_secs)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_secs: Option<u64>,
        /// Why, shown to the banned user and to everyone else.
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        /// How long, e.g. 30s, 10m, 2h, 7d (default: until lifted; on the wire, seconds).
        #[arg(long = "for", value_name = "DURATION", value_parser = duration_secs)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_secs: Option<u64>,
        /// Why, shown to the muted user.
        #[arg(long)]
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

/// A duration such as `90s`, `10m`, `2h` or `7d`, as whole seconds: at least one, at most
/// [`crate::moderation::MAX_DURATION`].
pub fn duration_secs(text: &str) -> Result<u64, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 30s, 10m, 2h, 7d)"))?;
    if d.as_secs() == 0 {
        return Err("must be at least one second".into());
    }
    if d > crate::moderation::MAX_DURATION {
        return Err("must be at most 10 years (leave it out for no end)".into());
    }
    Ok(d.as_secs())
}

/// `wall`'s words: one string on the wire, the words as typed on natterctl's command line.
mod words {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(words: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&words.join(" "))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(vec![String::deserialize(d)?])
    }
}

/// Each command's name and the fields it takes besides `cmd`: to tell an unknown command
/// from bad arguments, and to refuse stray fields, which serde lets through for commands
/// without arguments.
const COMMANDS: &[(&str, &[&str])] = &[
    ("list", &["room"]),
    ("rooms", &[]),
    ("topic", &["room", "text"]),
    ("kick", &["nick", "reason"]),
    ("wall", &["room", "text"]),
    ("stats", &[]),
    ("reload", &[]),
    ("reopen_logs", &[]),
    ("shutdown", &["message"]),
    ("ban", &["target", "for_secs", "reason"]),
    ("unban", &["target"]),
    ("bans", &[]),
    ("mute", &["nick", "for_secs", "reason"]),
    ("unmute", &["nick"]),
    ("watch", &[]),
];

/// Parses one request line into its `id` (if any) and command.
pub fn parse_request(line: &str) -> (Option<Value>, Result<AdminCommand, Failure>) {
    let mut object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            let failure = Failure::new("bad_request", "a request is a JSON object");
            return (None, Err(failure));
        }
        Err(e) => {
            return (
                None,
                Err(Failure::new("bad_json", format!("bad JSON: {e}"))),
            );
        }
    };
    let id = object.remove("id");
    let name = match object.get("cmd") {
        None => return (id, Err(Failure::new("bad_request", "missing \"cmd\""))),
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return (
                id,
                Err(Failure::new("bad_request", "\"cmd\" must be a string")),
            );
        }
    };
    let Some((_, fields)) = COMMANDS.iter().find(|(n, _)| *n == name) else {
        let failure = Failure::new("unknown_command", format!("unknown command: {name}"));
        return (id, Err(failure));
    };
    if let Some(stray) = object
        .keys()
        .find(|k| *k != "cmd" && !fields.contains(&k.as_str()))
    {
        let failure = Failure::new("bad_request", format!("{name} takes no field \"{stray}\""));
        return (id, Err(failure));
    }
    let command = AdminCommand::deserialize(Value::Object(object))
        .map_err(|e| Failure::new("bad_request", e.to_string()));
    (id, command)
}

impl AdminCommand {
    /// The command's name on the wire (`"list"`, `"ban"`, ...), as logged: its `cmd` tag,
    /// so the name is written once, in the enum's serde attributes and `COMMANDS`.
    pub fn name(&self) -> &'static str {
        let value = serde_json::to_value(self).unwrap_or_default();
        let tag = value["cmd"].as_str().unwrap_or_default();
        COMMANDS
            .iter()
            .find(|(name, _)| *name == tag)
            .map_or("unknown", |(name, _)| name)
    }
}

/// A request line for `command`.
pub fn request_line(command: &AdminCommand) -> String {
    serde_json::to_string(command).unwrap_or_default()
}

/// A success line: `data`'s fields with `"ok": true` and the request's `id`.
pub fn ok_line(id: Option<Value>, data: impl Serialize) -> String {
    let mut object = match serde_json::to_value(data) {
        Ok(Value::Object(object)) => object,
        _ => Map::new(),
    };
    object.insert("ok".into(), Value::Bool(true));
    if let Some(id) = id {
        object.insert("id".into(), id);
    }
    Value::Object(object).to_string()
}

/// A failure line.
pub fn error_line(id: Option<Value>, failure: &Failure) -> String {
    let mut object = Map::new();
    object.insert("ok".into(), Value::Bool(false));
    if let Some(id) = id {
        object.insert("id".into(), id);
    }
    object.insert(
        "error".into(),
        serde_json::to_value(failure).unwrap_or(Value::Null),
    );
    Value::Object(object).to_string()
}

/// A reply as natterctl reads it: success with its fields, or the failure.
pub fn parse_response(line: &str) -> Result<Map<String, Value>, Failure> {
    let object = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Err(Failure::new(
                "bad_response",
                "natterd sent something unreadable",
            ));
        }
    };
    if object.get("ok") == Some(&Value::Bool(true)) {
        return Ok(object);
    }
    let failure = object
        .get("error")
        .and_then(|e| Failure::deserialize(e).ok())
        .unwrap_or_else(|| Failure::new("bad_response", "natterd refused without a reason"));
    Err(failure)
}

/// The reply to `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListReply {
    /// Ordered by id.
    pub connections: Vec<Connection>,
}

/// The reply to `rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomsReply {
    /// Most users first.
    pub rooms: Vec<RoomInfo>,
}

/// The reply to `topic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicReply {
    /// The room, as shown.
    pub room: String,
    /// The topic now; absent when cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The reply to `wall`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WallReply {
    /// Users it was sent to.
    pub recipients: u64,
}

/// Line framing over a byte stream, with the line length bounded.
pub struct Framed<S> {
    stream: BufReader<S>,
    buf: Vec<u8>,
    max: usize,
}

/// What reading a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A line, without its newline.
    Line(String),
    /// A line over the limit ([`MAX_LINE`] for requests) was skipped.
    TooLong,
    /// The peer closed the stream.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    /// Frames `stream`, reading lines of at most [`MAX_LINE`] bytes: natterd's side.
    pub fn new(stream: S) -> Framed<S> {
        Framed::with_max(stream, MAX_LINE)
    }

    /// Frames `stream`, reading lines of at most `max` bytes.
    pub fn with_max(stream: S, max: usize) -> Framed<S> {
        Framed {
            stream: BufReader::new(stream),
            buf: Vec::new(),
            max,
        }
    }

    /// The next line. A line over the limit is read to its end and reported as
    /// [`Read::TooLong`], so the stream stays usable; memory stays within the limit.
    pub async fn read_line(&mut self) -> std::io::Result<Read> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let chunk = self.stream.fill_buf().await?;
            if chunk.is_empty() {
                let partial = !self.buf.is_empty() && !too_long;
                return Ok(if partial {
                    self.take_line()
                } else {
                    Read::Closed
                });
            }
            let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (chunk.len(), false),
            };
            if !too_long {
                self.buf.extend_from_slice(&chunk[..used]);
                if self.buf.len() > self.max {
                    too_long = true;
                    self.buf = Vec::new();
                }
            }
            self.stream.consume(used);
            if done {
                return Ok(if too_long {
                    Read::TooLong
                } else {
                    self.take_line()
                });
            }
        }
    }

    fn take_line(&mut self) -> Read {
        let text = String::from_utf8_lossy(&self.buf);
        Read::Line(text.trim_end_matches(['\n', '\r']).to_owned())
    }

    /// Writes `line` and a newline.
    pub async fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(line.as_bytes()).await?;
        stream.write_all(b"\n").await?;
        stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_its_wire_name() {
        assert_eq!(AdminCommand::List { room: None }.name(), "list");
        assert_eq!(AdminCommand::ReopenLogs.name(), "reopen_logs");
        let ban = AdminCommand::Ban {
            target: "x".into(),
            for_secs: None,
            reason: None,
        };
        assert_eq!(ban.name(), "ban");
        for (name, _) in COMMANDS {
            let line = format!("{{\"cmd\":\"{name}\"}}");
            if let (_, Ok(command)) = parse_request(&line) {
                assert_eq!(command.name(), *name);
            }
        }
    }

    #[test]
    fn requests_parse_with_ids_and_precise_errors() {
        let (id, cmd) = parse_request(r#"{"cmd":"kick","nick":"bob","reason":"spam","id":7}"#);
        assert_eq!(id, Some(Value::from(7)));
        let kick = AdminCommand::Kick {
            nick: "bob".into(),
            reason: Some("spam".into()),
        };
        assert_eq!(cmd, Ok(kick.clone()));
        assert_eq!(parse_request(&request_line(&kick)).1, Ok(kick));
        let code = |line: &str| parse_request(line).1.unwrap_err().code;
        assert_eq!(code("{nope"), "bad_json");
        assert_eq!(code("[1]"), "bad_request");
        assert_eq!(code(r#"{"id":1}"#), "bad_request");
        assert_eq!(code(r#"{"cmd":"dance"}"#), "unknown_command");
        assert_eq!(code(r#"{"cmd":"kick"}"#), "bad_request");
        assert_eq!(code(r#"{"cmd":"list","extra":1}"#), "bad_request");
        assert_eq!(code(r#"{"cmd":5}"#), "bad_request");
    }

    #[test]
    fn responses_round_trip() {
        let line = ok_line(Some("x".into()), WallReply { recipients: 3 });
        let object = parse_response(&line).unwrap();
        assert_eq!(object["recipients"], 3);
        assert_eq!(object["id"], "x");
        let failure = Failure::new("not_found", "no such user: bob");
        let line = error_line(None, &failure);
        assert_eq!(
            line,
            r#"{"error":{"code":"not_found","message":"no such user: bob"},"ok":false}"#
        );
        assert_eq!(parse_response(&line), Err(failure));
    }

    #[tokio::test]
    async fn framing_over_a_tiny_in_memory_pipe() {
        let (a, b) = tokio::io::duplex(7);
        let mut server = Framed::new(a);
        let mut client = Framed::new(b);
        let talk = async {
            client.write_line(r#"{"cmd":"list"}"#).await.unwrap();
            let long = "x".repeat(MAX_LINE + 10);
            client.write_line(&long).await.unwrap();
            client
                .write_line(r#"{"cmd":"stats","id":2}"#)
                .await
                .unwrap();
            let reply = client.read_line().await.unwrap();
            drop(client);
            reply
        };
        let serve = async {
            let mut got = Vec::new();
            loop {
                match server.read_line().await.unwrap() {
                    Read::Closed => break,
                    other => got.push(other),
                }
                if got.len() == 3 {
                    server.write_line("{\"ok\":true}").await.unwrap();
                }
            }
            got
        };
        let (reply, got) = tokio::join!(talk, serve);
        assert_eq!(reply, Read::Line("{\"ok\":true}".into()));
        assert_eq!(got[0], Read::Line(r#"{"cmd":"list"}"#.into()));
        assert_eq!(got[1], Read::TooLong);
        assert_eq!(got[2], Read::Line(r#"{"cmd":"stats","id":2}"#.into()));
    }
}
