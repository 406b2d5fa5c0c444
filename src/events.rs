//! Live events for operators (`natterctl watch`): joins, leaves, kicks, bans, mutes, reports,
//! flood and slow-reader actions, reloads.
//!
//! Events go to a bounded broadcast channel. Nothing is built when nobody is watching, and a
//! watcher that falls behind loses the oldest events (and is told how many) rather than
//! holding memory or slowing the chat down.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

/// Events a watcher may fall behind by before it starts losing them.
const CAPACITY: usize = 1024;

/// Something an operator may want to see as it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A user logged in.
    Join {
        /// Their nickname.
        nick: String,
        /// Their address.
        peer: String,
    },
    /// A logged-in user went away.
    Leave {
        /// Their nickname.
        nick: String,
        /// Their address.
        peer: String,
        /// Why, as logged (quit, closed, kicked, send queue full, ...).
        reason: String,
    },
    /// A connection was turned away before the greeting.
    Refused {
        /// Its address.
        peer: String,
        /// Why (banned, server_full, too_many_from_address).
        cause: String,
    },
    /// A nickname was refused at login because it is banned.
    NickBanned {
        /// The nickname tried.
        nick: String,
        /// The address it came from.
        peer: String,
    },
    /// An operator kicked a user.
    Kick {
        /// Who.
        nick: String,
        /// Why, if given.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The operator's uid.
        by: u32,
    },
    /// An operator banned an address, range or nickname.
    Ban {
        /// What.
        target: String,
        /// Why, if given.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When it ends by itself, if ever.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<DateTime<Utc>>,
        /// The operator's uid.
        by: u32,
        /// Users disconnected by it.
        kicked: Vec<String>,
    },
    /// An operator lifted a ban.
    Unban {
        /// What.
        target: String,
        /// The operator's uid.
        by: u32,
    },
    /// An operator muted a nickname.
    Mute {
        /// Who.
        nick: String,
        /// Why, if given.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When it ends by itself, if ever.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires: Option<DateTime<Utc>>,
        /// The operator's uid.
        by: u32,
    },
    /// An operator lifted a mute.
    Unmute {
        /// Who.
        nick: String,
        /// The operator's uid.
        by: u32,
    },
    /// A ban or mute reached its end and was removed.
    Expired {
        /// `ban` or `mute`.
        kind: String,
        /// What it applied to.
        target: String,
    },
    /// A user flagged another with `/report`.
    Report {
        /// Who reported.
        from: String,
        /// The reporter's address.
        peer: String,
        /// Who was reported.
        about: String,
        /// Whether `about` was online at the time.
        online: bool,
        /// The reporter's words.
        reason: String,
    },
    /// Flood control began holding back a user's lines.
    Flood {
        /// Who.
        nick: String,
        /// Their address.
        peer: String,
    },
    /// A slow reader missed group messages (told once they caught up).
    SlowReader {
        /// Who.
        nick: String,
        /// Messages they missed.
        skipped: u64,
    },
    /// A room came to be: a user's `/join`, or a new `[[chat.rooms]]` entry.
    RoomCreated {
        /// Its name, `#name`.
        room: String,
        /// Who made it: a nickname, or `config`.
        by: String,
    },
    /// A user room's last user left, or it was dropped from the configuration while empty.
    RoomRemoved {
        /// Its name.
        room: String,
    },
    /// A room's topic changed.
    Topic {
        /// The room.
        room: String,
        /// The new topic; absent when cleared.
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// A nickname, `operators` (natterctl) or `config` (a reload).
        by: String,
    },
    /// A user changed nickname with `/nick`.
    Nick {
        /// The nickname before.
        old: String,
        /// The nickname now.
        new: String,
        /// Their address.
        peer: String,
    },
    /// The configuration was reloaded.
    Reload {
        /// Keys now in effect.
        changed: Vec<String>,
        /// Keys waiting for a restart.
        restart_needed: Vec<String>,
    },
    /// A reload was refused; the running configuration stays.
    ReloadFailed {
        /// Why.
        message: String,
    },
    /// natterd is shutting down; the stream ends after this.
    Shutdown,
    /// This watcher fell behind and lost events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl Event {
    /// The event as one JSON object line, stamped with `at`.
    pub fn to_line(&self, at: DateTime<Utc>) -> String {
        let mut object = match serde_json::to_value(self) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        object.insert("at".into(), Value::String(at));
        Value::Object(object).to_string()
    }
}

/// Where events are published. Each event is stamped and formatted once, then shared.
/// Clones publish to the same watchers.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<std::sync::Arc<str>>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            sender: broadcast::Sender::new(CAPACITY),
        }
    }
}

impl Events {
    /// Publishes the event `build` makes, if anyone is watching; otherwise builds nothing.
    pub fn emit(&self, build: impl FnOnce() -> Event) {
        if self.sender.receiver_count() > 0 {
            let line = build().to_line(Utc::now());
            let _ = self.sender.send(line.into());
        }
    }

    /// A new watcher's stream of event lines, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<str>> {
        self.sender.subscribe()
    }
}

/// An event line as natterctl shows it to a person: the time, the event, then its fields
/// as `key=value` (quoted when they hold spaces).
pub fn human(line: &str) -> String {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
        return line.to_owned();
    };
    let at = match object.remove("at") {
        Some(Value::String(at)) => at,
        _ => String::new(),
    };
    let event = match object.remove("event") {
        Some(Value::String(event)) => event,
        _ => "?".into(),
    };
    let mut out = format!("{at} {event}");
    for (key, value) in object {
        let text = match value {
            Value::String(s) => s,
            Value::Array(items) if items.is_empty() => continue,
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        if text.is_empty() || text.contains(char::is_whitespace) || text.contains('"') {
            out.push_str(&format!(" {key}={text:?}"));
        } else {
            out.push_str(&format!(" {key}={text}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_scripts_and_people() {
        let event = Event::Report {
            from: "alice".into(),
            peer: "127.0.0.1:5000".into(),
            about: "bob".into(),
            online: true,
            reason: "spamming links".into(),
        };
        let at = "2026-11-26T15:00:00Z".parse().unwrap();
        let line = event.to_line(at);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["event"], "report");
        assert_eq!(value["about"], "bob");
        assert_eq!(value["at"], "2026-11-26T15:00:00.000Z");
        assert_eq!(
            human(&line),
            "2026-11-26T15:00:00.000Z report about=bob from=alice online=true \
             peer=127.0.0.1:5000 reason=\"spamming links\""
        );
        let ban = Event::Ban {
            target: "10.0.0.0/8".into(),
            reason: None,
            expires: None,
            by: 0,
            kicked: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            human(&ban.to_line(at)),
            "2026-11-26T15:00:00.000Z ban by=0 kicked=a,b target=10.0.0.0/8"
        );
    }

    #[tokio::test]
    async fn nothing_is_built_without_watchers_and_watchers_get_events() {
        let events = Events::default();
        events.emit(|| unreachable!("nobody watches"));
        let mut rx = events.subscribe();
        events.emit(|| Event::Shutdown);
        let line = rx.recv().await.unwrap();
        assert!(line.starts_with("{\"at\":"), "{line}");
        assert!(line.contains("\"event\":\"shutdown\""));
    }
}
