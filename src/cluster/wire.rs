//! What nodes tell each other over NATS: one JSON object per message, on one subject, so
//! each node's messages arrive everywhere in the order it sent them.
//!
//! Lines travel formatted, exactly as the origin node shows them to its own users, so a line
//! looks the same on every node (timestamps included).

use serde::{Deserialize, Serialize};

/// The largest message a node accepts from the bus; anything longer is dropped and counted.
/// A chat line is at most 64 KiB; a roster of thousands of users is the big one.
pub const MAX_MESSAGE: usize = 8 << 20;

/// One message on the bus; `node` is always the sender. (Fields are named for what they hold:
/// `room` a room key, `key` a nickname key, `from` the sender's id on its node, `line` a line
/// as shown.)
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// A group message or `/me` line said in `room` by `from` (nickname key `key`).
    Said {
        node: String,
        room: String,
        line: String,
        from: u64,
        key: String,
    },
    /// A server line for everyone in `room` (joins, leaves, nickname and topic changes, kicks).
    Notice {
        node: String,
        room: String,
        line: String,
    },
    /// A user's state now: after login, a room change, a new nickname, away or ignore mode.
    User { node: String, user: UserState },
    /// A user is gone (the announcement, if any, came as a [`Wire::Notice`]).
    Gone { node: String, id: u64 },
    /// A private message for the user whose nickname key is `to`, wherever they are.
    Whisper {
        node: String,
        to: String,
        line: String,
        from: u64,
        key: String,
    },
    /// A room's topic changed (`None`: cleared); `line` announces it.
    Topic {
        node: String,
        room: String,
        topic: Option<String>,
        line: String,
    },
    /// An operator on `node` kicked `nick`, a user of `to`.
    Kick {
        node: String,
        to: String,
        nick: String,
        reason: Option<String>,
        by: u32,
    },
    /// `* [server] text`, for everyone or one room.
    Wall {
        node: String,
        room: Option<String>,
        line: String,
    },
    /// A node started or came back; every other node answers with its roster.
    Hello { node: String },
    /// Every user of `node`.
    Roster { node: String, users: Vec<UserState> },
    /// `node` is alive (sent every third of the node timeout).
    Alive { node: String },
    /// `node` is stopping; its users are gone.
    Bye { node: String },
}

/// The longest line a node takes from the bus: the longest input line (64 KiB) formatted.
const MAX_LINE: usize = 65_536 + 1024;
/// The longest name, nickname key or room key a node takes from the bus.
const MAX_NAME: usize = 1024;

impl Wire {
    /// Whether everything in it could have come from a natterd: lines end in CR LF and hold
    /// no other control character, names and keys hold none, and each has its bound. Other
    /// nodes are trusted to format lines, not to put escape sequences on users' screens.
    pub fn is_clean(&self) -> bool {
        let name = |s: &str| s.len() <= MAX_NAME && !s.chars().any(char::is_control);
        let line = |s: &str| {
            s.len() <= MAX_LINE
                && s.strip_suffix("\r\n")
                    .is_some_and(|body| !body.chars().any(char::is_control))
        };
        let text = |s: &Option<String>| s.as_deref().is_none_or(name);
        let user = |u: &UserState| {
            [&u.nick, &u.key, &u.room, &u.room_shown, &u.peer]
                .iter()
                .all(|s| name(s))
                && text(&u.away)
        };
        name(self.node())
            && match self {
                Wire::Said {
                    room, line: l, key, ..
                } => name(room) && line(l) && name(key),
                Wire::Notice { room, line: l, .. } => name(room) && line(l),
                Wire::User { user: u, .. } => user(u),
                Wire::Gone { .. } | Wire::Hello { .. } | Wire::Alive { .. } | Wire::Bye { .. } => {
                    true
                }
                Wire::Whisper {
                    to, line: l, key, ..
                } => name(to) && line(l) && name(key),
                Wire::Topic {
                    room,
                    topic,
                    line: l,
                    ..
                } => name(room) && text(topic) && line(l),
                Wire::Kick {
                    to, nick, reason, ..
                } => name(to) && name(nick) && text(reason),
                Wire::Wall { room, line: l, .. } => text(room) && line(l),
                Wire::Roster { users, .. } => users.iter().all(user),
            }
    }

    /// A server line `line` for room `room`, from `node`.
    pub fn notice(node: String, room: &str, line: &[u8]) -> Wire {
        Wire::Notice {
            node,
            room: room.to_owned(),
            line: String::from_utf8_lossy(line).into_owned(),
        }
    }

    /// The node that sent it.
    pub fn node(&self) -> &str {
        match self {
            Wire::Said { node, .. }
            | Wire::Notice { node, .. }
            | Wire::User { node, .. }
            | Wire::Gone { node, .. }
            | Wire::Whisper { node, .. }
            | Wire::Topic { node, .. }
            | Wire::Kick { node, .. }
            | Wire::Wall { node, .. }
            | Wire::Hello { node }
            | Wire::Roster { node, .. }
            | Wire::Alive { node }
            | Wire::Bye { node } => node,
        }
    }
}

/// One user as other nodes see them.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserState {
    /// Their connection id on their node.
    pub id: u64,
    pub nick: String,
    pub key: String,
    /// Their room's key and name as shown.
    pub room: String,
    pub room_shown: String,
    pub ignoring: bool,
    pub away: Option<String>,
    /// Their address, for `natterctl list`.
    pub peer: String,
}

/// A nickname key as a NATS key-value key: keys take only `[-/_=.a-zA-Z0-9]`, nickname keys
/// are any Unicode, so they go as hex.
pub fn kv_key(key: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 + key.len() * 2);
    out.push_str("n_");
    for b in key.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_name_their_node() {
        let wire = Wire::Said {
            node: "a".into(),
            room: "lobby".into(),
            line: "<bob> hi\r\n".into(),
            from: 3,
            key: "bob".into(),
        };
        let json = serde_json::to_string(&wire).unwrap();
        assert!(json.starts_with(r#"{"t":"said","node":"a""#), "{json}");
        let back: Wire = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wire);
        assert_eq!(back.node(), "a");
        assert!(serde_json::from_str::<Wire>(r#"{"t":"nope","node":"a"}"#).is_err());
    }

    #[test]
    fn hostile_messages_are_not_clean() {
        let said = |line: &str| Wire::Said {
            node: "a".into(),
            room: "lobby".into(),
            line: line.into(),
            from: 1,
            key: "bob".into(),
        };
        assert!(said("<bob> hi\r\n").is_clean());
        assert!(!said("<bob> \x1b[2Jhi\r\n").is_clean());
        assert!(!said("<bob> hi").is_clean());
        assert!(!said("<bob> a\r\n* fake\r\n").is_clean());
        assert!(!said(&format!("{}\r\n", "x".repeat(MAX_LINE))).is_clean());
        let user = UserState {
            id: 1,
            nick: "bob\u{9b}".into(),
            key: "bob".into(),
            room: "lobby".into(),
            room_shown: "#lobby".into(),
            ignoring: false,
            away: None,
            peer: "127.0.0.1:1".into(),
        };
        assert!(
            !Wire::User {
                node: "a".into(),
                user: user.clone()
            }
            .is_clean()
        );
        let away = UserState {
            nick: "bob".into(),
            away: Some("\x07".into()),
            ..user
        };
        assert!(
            !Wire::Roster {
                node: "a".into(),
                users: vec![away]
            }
            .is_clean()
        );
        assert!(
            !Wire::Alive {
                node: "a\nb".into()
            }
            .is_clean()
        );
    }

    #[test]
    fn keys_are_safe_for_the_store() {
        assert_eq!(kv_key("bob"), "n_626f62");
        let k = kv_key("ｂ.*>\u{0}");
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
