//! One room: its name, topic and history, and the rules for room names and topics.
//!
//! Pure data: the hub holds every room under its lock and does the fan-out.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{Client, ClientId};
use crate::nick::{self, NickError};
use crate::sanitize;

/// Longest room name, in characters after the `#`.
pub const MAX_NAME_CHARS: usize = 24;
/// Longest topic or away message, in bytes once cleaned.
pub const MAX_TEXT_BYTES: usize = 200;

/// A room name checked against the rules: shown as first written, compared by `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName {
    /// `#name`, as written (less any invisible characters).
    pub shown: Arc<str>,
    /// Compared like nicknames ([`nick::key`]): `#Rust` and `#rust` are one room.
    pub key: Arc<str>,
}

/// Why a room name was refused; shown after `! bad room name: `.
#[derive(Debug, PartialEq, Eq)]
pub struct BadName(&'static str);

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl RoomName {
    /// Reads `rust` or `#rust`: 1 to 24 characters after the `#`, with the nickname
    /// character rules.
    pub fn parse(text: &str) -> Result<RoomName, BadName> {
        let visible = nick::visible(text.trim());
        let bare = visible.strip_prefix('#').unwrap_or(&visible);
        if bare.is_empty() {
            return Err(BadName("empty"));
        }
        nick::validate(bare, MAX_NAME_CHARS).map_err(|e| {
            BadName(match e {
                NickError::TooLong(_) => "longer than 24 characters",
                NickError::Whitespace => "no spaces allowed",
                NickError::Control => "no control characters allowed",
                NickError::BadStart => "may not start with @ or /",
                _ => "needs a visible letter, digit or symbol",
            })
        })?;
        Ok(RoomName {
            shown: Arc::from(format!("#{bare}")),
            key: Arc::from(nick::key(bare)),
        })
    }
}

/// Why a topic or away message was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

/// Cleans `text` like chat text and checks its length: `None` when it is blank.
pub fn clean_text(text: &str) -> Result<Option<Arc<str>>, TooLong> {
    let cleaned = sanitize::clean(text.as_bytes());
    if cleaned.len() > MAX_TEXT_BYTES {
        Err(TooLong)
    } else if cleaned.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Arc::from(cleaned)))
    }
}

/// A room and who is in it.
#[derive(Debug)]
pub(super) struct Room {
    pub name: Arc<str>,
    pub topic: Option<Arc<str>>,
    /// Named in the configuration: always exists, and only operators set its topic.
    pub configured: bool,
    /// The topic the configuration last gave, so a reload changes only what it changed.
    pub config_topic: Option<Arc<str>>,
    /// The logged-in users in it. Clients live here so a group message walks only its room.
    pub members: HashMap<ClientId, Client>,
    /// Users in it on other nodes of a cluster.
    pub remote: super::remote::RemoteMembers,
    pub history: History,
}

impl Room {
    pub fn new(name: Arc<str>, configured: bool) -> Room {
        Room {
            name,
            topic: None,
            configured,
            config_topic: None,
            members: HashMap::new(),
            remote: HashMap::new(),
            history: History::default(),
        }
    }

    /// Users in it, here and on other nodes.
    pub fn len(&self) -> usize {
        self.members.len() + self.remote.len()
    }

    /// Sends `line` to every member.
    pub fn tell_all(&self, line: &Bytes) {
        for client in self.members.values() {
            client.outbox.push(line.clone());
        }
    }
}

/// The last group messages and `/me` lines of a room, as they were first sent.
#[derive(Debug, Default)]
pub(super) struct History {
    lines: VecDeque<Said>,
}

/// One line in history, with what a ban needs to find its author.
#[derive(Debug)]
struct Said {
    line: Bytes,
    author: ClientId,
    addr: IpAddr,
    /// The author's nickname key when they said it.
    key: Arc<str>,
}

impl History {
    /// Keeps `line`, dropping the oldest beyond `max` (0 keeps nothing).
    pub fn push(&mut self, max: usize, line: Bytes, author: ClientId, addr: IpAddr, key: Arc<str>) {
        if max == 0 {
            self.lines.clear();
            return;
        }
        self.trim(max - 1);
        self.lines.push_back(Said {
            line,
            author,
            addr,
            key,
        });
    }

    /// Drops the oldest lines beyond `max`.
    pub fn trim(&mut self, max: usize) {
        let excess = self.lines.len().saturating_sub(max);
        self.lines.drain(..excess);
        if self.lines.is_empty() {
            self.lines = VecDeque::new();
        }
    }

    /// Removes every line by a connection in `authors` or one `matches` picks by its
    /// author's address and nickname key.
    pub fn purge(&mut self, authors: &[ClientId], matches: &dyn Fn(IpAddr, &[&str]) -> bool) {
        self.lines
            .retain(|said| !authors.contains(&said.author) && !matches(said.addr, &[&said.key]));
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Every line with its author's nickname key and address, oldest first.
    pub fn said(&self) -> impl Iterator<Item = (&Bytes, &Arc<str>, IpAddr)> {
        self.lines.iter().map(|s| (&s.line, &s.key, s.addr))
    }

    /// The lines, oldest first, but those whose author `hidden` picks by connection and
    /// nickname key.
    pub fn lines(&self, hidden: impl Fn(ClientId, &str) -> bool) -> impl Iterator<Item = &Bytes> {
        self.lines
            .iter()
            .filter(move |said| !hidden(said.author, &said.key))
            .map(|said| &said.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let rust = RoomName::parse("#Rust").unwrap();
        assert_eq!(&*rust.shown, "#Rust");
        assert_eq!(
            rust,
            RoomName::parse("rust")
                .map(|n| RoomName {
                    shown: rust.shown.clone(),
                    ..n
                })
                .unwrap()
        );
        assert_eq!(RoomName::parse("ＲＵＳＴ").unwrap().key, rust.key);
        assert_eq!(RoomName::parse("#").unwrap_err().to_string(), "empty");
        assert_eq!(RoomName::parse("").unwrap_err().to_string(), "empty");
        assert_eq!(
            RoomName::parse("#a b").unwrap_err().to_string(),
            "no spaces allowed"
        );
        assert_eq!(
            RoomName::parse(&"x".repeat(25)).unwrap_err().to_string(),
            "longer than 24 characters"
        );
        assert!(RoomName::parse(&"x".repeat(24)).is_ok());
        assert!(RoomName::parse("#a\u{1b}[2J").is_err());
        assert!(RoomName::parse("#\u{200b}\u{2800}").is_err());
        assert!(RoomName::parse("#/x").is_err());
        // One leading # is the marker; a second belongs to the name.
        assert_eq!(&*RoomName::parse("##x").unwrap().shown, "##x");
        // Invisible characters are dropped, so they cannot make a look-alike room.
        assert_eq!(RoomName::parse("#ru\u{200b}st").unwrap().key, rust.key);
    }

    #[test]
    fn topics_are_cleaned_and_bounded() {
        assert_eq!(clean_text("  "), Ok(None));
        assert_eq!(
            clean_text("a\u{1b}[31mred").unwrap().as_deref(),
            Some("ared")
        );
        assert!(clean_text(&"é".repeat(100)).is_ok());
        assert_eq!(clean_text(&"é".repeat(101)), Err(TooLong));
    }

    #[test]
    fn history_keeps_the_last_lines_and_purges_by_author() {
        let mut h = History::default();
        let addr: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        for i in 0..5u64 {
            let key: Arc<str> = if i % 2 == 0 { "a".into() } else { "b".into() };
            let ip = if i == 3 { other } else { addr };
            h.push(3, Bytes::from(format!("{i}")), i, ip, key);
        }
        let shown = |h: &History| {
            h.lines(|_, _| false)
                .map(|l| l.to_vec())
                .collect::<Vec<_>>()
        };
        let without_a = h.lines(|_, key| key == "a").count();
        assert_eq!(without_a, 1);
        assert_eq!(shown(&h), [b"2".to_vec(), b"3".to_vec(), b"4".to_vec()]);
        h.purge(&[4], &|ip, _| ip == other);
        assert_eq!(shown(&h), [b"2".to_vec()]);
        h.push(3, Bytes::from_static(b"5"), 5, addr, "b".into());
        h.purge(&[], &|_, keys| keys.contains(&"a"));
        assert_eq!(shown(&h), [b"5".to_vec()]);
        h.push(0, Bytes::from_static(b"6"), 6, addr, "b".into());
        assert_eq!(shown(&h).len(), 0);
    }
}
