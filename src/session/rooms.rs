//! The room commands: `/join`, `/rooms`, `/topic` and `/ls`.

use std::fmt::Write;

use tokio::time::Instant;

use super::Session;
use crate::hub::room::{self, MAX_TEXT_BYTES};
use crate::hub::{JoinError, RoomName};

/// `/ls` and `/ignore` name at most this many bytes of nicknames, then count the rest.
pub(super) const LIST_MAX_BYTES: usize = 2000;
/// `/rooms` lists rooms until its lines reach this many bytes, then counts the rest.
const ROOMS_MAX_BYTES: usize = 4096;

impl Session {
    /// `/join`: to another room, made if need be (paced per connection).
    pub(super) fn join(&mut self, name: &str) {
        let name = match RoomName::parse(name) {
            Ok(name) => name,
            Err(reason) => return self.error(format_args!("bad room name: {reason}")),
        };
        let (daemon, id) = (self.daemon.clone(), self.id);
        let pace = &mut self.paces().room;
        let joined = daemon.hub.join(id, &name, || pace.take(Instant::now()));
        match joined {
            Ok(_) => {}
            Err(JoinError::Already(room)) => self.error(format_args!("you are already in {room}")),
            Err(JoinError::NoSuchRoom(room)) => self.error(format_args!("no such room: {room}")),
            Err(JoinError::TooMany) => {
                self.error(format_args!(
                    "too many rooms; join one that exists (/rooms)"
                ));
            }
            Err(JoinError::TooFast(wait)) => {
                let secs = wait.as_secs() + 1;
                self.error(format_args!("too many new rooms; try again in {secs} s"));
            }
        }
    }

    /// `/rooms`: `* N rooms:`, then one line per room, most users first.
    pub(super) fn rooms(&self) {
        let rooms = self.daemon.hub.rooms();
        let format = self.daemon.hub.format();
        let count = rooms.len();
        let noun = if count == 1 { "room" } else { "rooms" };
        self.send(format.system(format_args!("{count} {noun}:")));
        let mut bytes = 0;
        for (shown, room) in rooms.iter().enumerate() {
            if bytes >= ROOMS_MAX_BYTES {
                let more = count - shown;
                return self.send(format.system(format_args!("and {more} more")));
            }
            let (name, users) = (&room.name, room.users);
            let line = match &room.topic {
                Some(topic) => format.system(format_args!("{name} ({users}): {topic}")),
                None => format.system(format_args!("{name} ({users})")),
            };
            bytes += line.len();
            self.send(line);
        }
    }

    /// `/topic`: shows the room's topic, or sets it in a user room.
    pub(super) fn topic(&self, text: Option<&str>) {
        let hub = &self.daemon.hub;
        let format = hub.format();
        let Some(text) = text else {
            let Some((room, topic)) = hub.topic(self.id) else {
                return;
            };
            return match topic {
                Some(topic) => self.send(format.system(format_args!("topic of {room}: {topic}"))),
                None => self.send(format.system(format_args!("{room} has no topic"))),
            };
        };
        match room::clean_text(text) {
            Err(_) => self.error(format_args!("topic too long (max {MAX_TEXT_BYTES} bytes)")),
            Ok(None) => self.error(format_args!("usage: /topic [text]")),
            Ok(Some(topic)) => {
                if let Err(room) = hub.set_topic_by(self.id, topic) {
                    self.error(format_args!(
                        "only operators can change the topic of {room}"
                    ));
                }
            }
        }
    }

    /// `/ls`: `* N online in #room: alice, bob (away), carol (ignoring)`.
    pub(super) fn list(&self) {
        let Some((room, members)) = self.daemon.hub.members(self.id) else {
            return;
        };
        let names = members.iter().map(|m| {
            let mut name = m.nick.to_string();
            match (m.away, m.ignoring) {
                (true, true) => name.push_str(" (away, ignoring)"),
                (true, false) => name.push_str(" (away)"),
                (false, true) => name.push_str(" (ignoring)"),
                (false, false) => {}
            }
            name
        });
        let names = bounded_list(names, members.len());
        let count = members.len();
        let format = self.daemon.hub.format();
        self.send(format.system(format_args!("{count} online in {room}: {names}")));
    }
}

/// `a, b, c`, or past [`LIST_MAX_BYTES`] `a, b, and N more`, of `count` names.
pub(super) fn bounded_list(names: impl Iterator<Item = String>, count: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for name in names {
        if out.len() >= LIST_MAX_BYTES {
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        out.push_str(&name);
        shown += 1;
    }
    if shown < count {
        let _ = write!(out, ", and {} more", count - shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_bounded() {
        let names = |n: usize| (0..n).map(|i| format!("user{i:04}"));
        assert_eq!(bounded_list(names(2), 2), "user0000, user0001");
        let long = bounded_list(names(1000), 1000);
        assert!(long.len() < LIST_MAX_BYTES + 100, "{}", long.len());
        assert!(long.ends_with(" more"), "{long}");
    }
}
