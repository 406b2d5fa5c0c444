//! What natterctl does to the rooms: kick, ban, wall, set topics, and the listings.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ClientId, Hub, NoSuchUser, RoomName, State, topic_line};
use crate::cluster::wire::Wire;
use crate::events::Event;
use crate::format::Formatter;
use crate::nick;
use crate::outbox::Close;
use crate::stats::get;

/// One connection in `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// Connection number, unique since start.
    pub id: u64,
    /// Null while the user is still choosing.
    pub nick: Option<String>,
    /// The room they are in; null while still choosing a nickname.
    #[serde(default)]
    pub room: Option<String>,
    /// The cluster node they are connected to; absent on a node alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Remote address and port.
    pub peer: String,
    /// When it connected (RFC 3339, UTC).
    pub since: String,
    /// Seconds since the last line received.
    pub idle_secs: u64,
    /// In ignore mode.
    pub ignoring: bool,
    /// Lines received.
    pub lines: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Bytes waiting to be sent.
    pub queue_bytes: u64,
    /// Group messages skipped because it read too slowly.
    pub skipped: u64,
}

/// One room in `rooms` and `/rooms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// `#name`, as first written.
    pub name: String,
    /// Users in it.
    pub users: u64,
    /// Its topic, if any.
    pub topic: Option<String>,
    /// `config` (always exists) or `user` (goes when its last user leaves).
    pub kind: String,
}

impl Hub {
    /// Disconnects the user named `nick`: they get `! you were kicked[: reason]` as their last
    /// line, the others in their room `* nick was kicked[ (reason)]`.
    pub fn kick(&self, nick: &str, reason: Option<&str>) -> Result<Arc<str>, NoSuchUser> {
        let id = *self.lock().nicks.get(&*nick::key(nick)).ok_or(NoSuchUser)?;
        let format = self.format();
        let (notice, suffix) = match reason {
            Some(reason) => (
                Formatter::error(format_args!("you were kicked: {reason}")),
                format!(" ({reason})"),
            ),
            None => (
                Formatter::error(format_args!("you were kicked")),
                String::new(),
            ),
        };
        let announce =
            |nick: &str, _, _| Some(format.system(format_args!("{nick} was kicked{suffix}")));
        let mut state = self.lock();
        // Look again under this lock: the user may have left in between.
        let client = state.client_mut(id).ok_or(NoSuchUser)?;
        client.outbox.close_with(notice, Close::Kicked);
        drop(state);
        self.remove(id, announce).ok_or(NoSuchUser)
    }

    /// Disconnects every connection `matches` picks by its address and the nickname keys it
    /// has held, as a ban does: each gets `notice` as its last line, and the others in each
    /// one's room are told `* nick was banned[ (reason)]`. Their lines, and any other lines
    /// `matches` picks, leave every room's history. Returns their nicknames.
    pub fn expel(
        &self,
        matches: impl Fn(IpAddr, &[&str]) -> bool,
        notice: &Bytes,
        reason: Option<&str>,
    ) -> Vec<Arc<str>> {
        let format = self.format();
        let suffix = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let announce =
            |nick: &str, _, _| Some(format.system(format_args!("{nick} was banned{suffix}")));
        let mut state = self.lock();
        let ids: Vec<ClientId> = state
            .every_client()
            .filter(|(_, c, _)| matches(c.peer.ip(), &c.keys.all().collect::<Vec<_>>()))
            .map(|(id, c, _)| {
                c.outbox.close_with(notice.clone(), Close::Banned);
                id
            })
            .collect();
        for room in state.rooms.values_mut() {
            room.history.purge(&ids, &matches);
        }
        drop(state);
        ids.into_iter()
            .filter_map(|id| self.remove(id, announce))
            .collect()
    }

    /// Sends `line` to the user whose nickname key is `key`, if online; says whether.
    pub fn tell(&self, key: &str, line: Bytes) -> bool {
        let state = self.lock();
        let client = state.nicks.get(key).and_then(|&id| state.client(id));
        client.map(|c| c.outbox.push(line)).is_some()
    }

    /// Sends `* [server] text` to every logged-in user, or everyone in `room`, ignore mode or
    /// not; returns how many.
    pub fn wall(&self, text: &str, room: Option<&RoomName>) -> Result<usize, NoSuchUser> {
        let line = self.format().system(format_args!("[server] {text}"));
        let state = self.lock();
        let rooms: Vec<_> = match room {
            Some(name) => vec![state.rooms.get(&name.key).ok_or(NoSuchUser)?],
            None => state.rooms.values().collect(),
        };
        let mut count = 0;
        for room in rooms {
            room.tell_all(&line);
            count += room.len();
        }
        self.publish(|node| Wire::Wall {
            node,
            room: room.map(|r| r.key.to_string()),
            line: String::from_utf8_lossy(&line).into_owned(),
        });
        Ok(count)
    }

    /// Sets or clears the topic of `room`, any room, and tells everyone in it
    /// `* the operators set the topic: TEXT`. Returns the room's name as shown.
    pub fn set_topic(
        &self,
        room: &RoomName,
        topic: Option<Arc<str>>,
    ) -> Result<Arc<str>, NoSuchUser> {
        let format = self.format();
        let mut state = self.lock();
        let room_key = room.key.to_string();
        let room = state.rooms.get_mut(&room.key).ok_or(NoSuchUser)?;
        let line = topic_line(format, "the operators", topic.as_deref());
        room.tell_all(&line);
        self.publish(|node| Wire::Topic {
            node,
            room: room_key,
            topic: topic.as_deref().map(str::to_owned),
            line: String::from_utf8_lossy(&line).into_owned(),
        });
        self.events.emit(|| Event::Topic {
            room: room.name.to_string(),
            topic: topic.as_deref().map(str::to_owned),
            by: "operators".into(),
        });
        room.topic = topic;
        Ok(room.name.clone())
    }

    /// Gives every connection `line` as its last and closes it.
    pub fn close_all(&self, line: &Bytes) {
        let state = self.lock();
        for (_, client, _) in state.every_client() {
            client.outbox.close_with(line.clone(), Close::Shutdown);
        }
    }

    /// Every connection, for `natterctl list`, ordered by id.
    pub fn connections(&self) -> Vec<Connection> {
        let state = self.lock();
        let mut list: Vec<Connection> = state
            .every_client()
            .map(|(id, c, room)| Connection {
                id,
                nick: c.nick.as_deref().map(str::to_owned),
                room: room.map(ToString::to_string),
                node: None,
                peer: c.peer.to_string(),
                since: chrono::DateTime::<chrono::Utc>::from(c.since)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                idle_secs: c.meter.idle().as_secs(),
                ignoring: c.ignoring,
                lines: get(&c.meter.lines),
                bytes_in: get(&c.meter.bytes_in),
                bytes_out: get(&c.meter.bytes_out),
                queue_bytes: c.outbox.depth() as u64,
                skipped: c.outbox.skipped(),
            })
            .collect();
        let here = self.link.get().map(|l| l.node.to_string());
        for c in &mut list {
            c.node.clone_from(&here);
        }
        // Users on other nodes, as mirrored here: who and where, not their traffic.
        for room in state.rooms.values() {
            for r in room.remote.values() {
                list.push(Connection {
                    id: r.id,
                    nick: Some(r.nick.to_string()),
                    room: Some(room.name.to_string()),
                    node: Some(r.node.to_string()),
                    peer: r.peer.clone(),
                    since: String::new(),
                    idle_secs: 0,
                    ignoring: r.ignoring,
                    lines: 0,
                    bytes_in: 0,
                    bytes_out: 0,
                    queue_bytes: 0,
                    skipped: 0,
                });
            }
        }
        drop(state);
        list.sort_by(|a, b| (&a.node, a.id).cmp(&(&b.node, b.id)));
        list
    }

    /// Every room, most users first, then by name.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let state = self.lock();
        let mut rooms: Vec<RoomInfo> = state
            .rooms
            .values()
            .map(|r| RoomInfo {
                name: r.name.to_string(),
                users: r.len() as u64,
                topic: r.topic.as_deref().map(str::to_owned),
                kind: if r.configured { "config" } else { "user" }.to_owned(),
            })
            .collect();
        drop(state);
        rooms.sort_by_cached_key(|r| (std::cmp::Reverse(r.users), nick::fold(&r.name)));
        rooms
    }

    /// (logged-in users, most ever at once, rooms).
    pub fn counts(&self) -> (usize, usize, usize) {
        let state: std::sync::MutexGuard<'_, State> = self.lock();
        (state.nicks.len(), state.peak, state.rooms.len())
    }
}
