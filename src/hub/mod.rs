//! The rooms: who is connected, under which nickname, in which room, and fan-out to their
//! outboxes.
//!
//! One std `Mutex` guards the registry. Every method holds it only to look up or push into
//! outboxes, which never waits (see [`Outbox::push`]), so a slow client cannot hold up a
//! broadcast and no method awaits while holding the lock. Logged-in clients live inside
//! their room, so a group message walks only the room it is said in.
//!
//! The methods are split by what they do: this file has a connection's life (connect, login,
//! leave) and chat; `join.rs` moving between rooms; `people.rs` what users set about
//! themselves (nickname, away, ignores); `operators.rs` what natterctl does (kick, ban, wall,
//! topics, listings); `settings.rs` what a reload changes; `room.rs` one room (pure).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::cluster::wire::Wire;
use crate::events::Events;
use crate::format::Formatter;
use crate::nick::{self, HeldKeys, NickError};
use crate::outbox::Outbox;
use crate::stats::Meter;

mod join;
mod operators;
mod people;
mod remote;
pub mod room;
mod seed;
mod settings;
#[cfg(test)]
mod tests;

pub use operators::{Connection, RoomInfo};
pub use people::{IgnoreError, MAX_IGNORES, Member};
pub use remote::Link;
use room::Room;
pub use room::RoomName;
pub use seed::RoomState;
pub use settings::RoomSettings;

use join::enter;

/// Identifies one connection for its whole life.
pub type ClientId = u64;

/// The shared registry of connections and rooms.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    /// What the rooms need of the configuration; a reload swaps it.
    settings: RwLock<Arc<RoomSettings>>,
    /// Room, topic and nickname events for `natterctl watch`.
    events: Events,
    /// Where the other nodes of a cluster hear what happens here; unset alone.
    link: remote::LinkCell,
}

#[derive(Debug, Default)]
struct State {
    /// Connections that have not chosen a nickname yet.
    waiting: HashMap<ClientId, Client>,
    /// Rooms by [`RoomName::key`].
    rooms: HashMap<Arc<str>, Room>,
    /// The room key of every logged-in connection.
    room_of: HashMap<ClientId, Arc<str>>,
    /// Nickname key ([`nick::key`]) to its owner, for logged-in clients only, here or on
    /// other nodes.
    nicks: HashMap<Arc<str>, ClientId>,
    /// Users on other nodes by (node, their id there), with the local id they go by here.
    remote_ids: HashMap<(Arc<str>, u64), ClientId>,
    /// Topics and history another node gave for user rooms not yet known here.
    seeds: HashMap<Arc<str>, seed::RoomState>,
    /// `[chat] history` in force, here so a group message needs no other lock.
    history: usize,
    next_id: ClientId,
    /// Most users online at once.
    peak: usize,
}

#[derive(Debug)]
struct Client {
    nick: Option<Arc<str>>,
    /// The [`nick::key`]s of the nickname and of those held before it.
    keys: HeldKeys,
    peer: SocketAddr,
    since: SystemTime,
    outbox: Arc<Outbox>,
    meter: Arc<Meter>,
    ignoring: bool,
    /// Came unannounced (see [`Hub::login`]), so leaves unannounced too.
    quiet: bool,
    /// Away message and ignores, made when first set: most users never set either, and
    /// every client's entry in its room's table carries this field.
    social: Option<Box<Social>>,
}

/// What a user set about themselves beyond their nickname.
#[derive(Debug, Default)]
struct Social {
    away: Option<Arc<str>>,
    /// People this user ignores (`/ignore`), at most [`MAX_IGNORES`].
    ignores: Vec<people::Ignored>,
}

impl Client {
    /// Whether this user hides what the connection `from`, nickname key `key`, says.
    fn hides(&self, from: ClientId, key: &str) -> bool {
        self.social
            .as_ref()
            .is_some_and(|s| s.ignores.iter().any(|i| i.id == from || *i.key == *key))
    }

    fn ignores(&self) -> &[people::Ignored] {
        self.social.as_ref().map_or(&[], |s| &s.ignores)
    }

    fn away(&self) -> Option<&Arc<str>> {
        self.social.as_ref()?.away.as_ref()
    }

    fn social(&mut self) -> &mut Social {
        self.social.get_or_insert_default()
    }
}

/// What a group message reached here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fanout {
    /// Users it was queued for.
    pub delivered: u64,
    /// Slow readers it was skipped for.
    pub skipped: u64,
}

/// A group message was refused because its sender is in ignore mode.
#[derive(Debug, PartialEq, Eq)]
pub struct Ignoring;

/// A private message named nobody online, or a command named a room that does not exist.
#[derive(Debug, PartialEq, Eq)]
pub struct NoSuchUser;

/// Why `/join` did not move a user.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinError {
    /// They are in that room.
    Already(Arc<str>),
    /// It does not exist and users may not create rooms.
    NoSuchRoom(Arc<str>),
    /// It does not exist and `max_rooms` user rooms do.
    TooMany,
    /// This user created rooms too fast; try again after this long.
    TooFast(Duration),
}

impl Hub {
    /// Registers a new connection that has not chosen a nickname yet.
    pub fn connect(&self, peer: SocketAddr, outbox: Arc<Outbox>, meter: Arc<Meter>) -> ClientId {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        let client = Client {
            nick: None,
            keys: HeldKeys::default(),
            peer,
            since: SystemTime::now(),
            outbox,
            meter,
            ignoring: false,
            quiet: false,
            social: None,
        };
        state.waiting.insert(id, client);
        id
    }

    /// Gives `id` the nickname `nick` if nobody online has it and puts them in the default
    /// room: they get the welcome, the room, its topic and history, and the room
    /// `* nick joined`, all in one step so nobody sees a half-joined user. The join is
    /// announced only if the room is small enough (`announce_max`) and `announce` (asked
    /// only then) agrees; a user who came unannounced leaves unannounced.
    pub fn login(
        &self,
        id: ClientId,
        nick: &str,
        announce: impl FnOnce() -> bool,
    ) -> Result<Arc<str>, NickError> {
        let key: Arc<str> = Arc::from(nick::key(nick));
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        if state.nicks.contains_key(&key) {
            return Err(NickError::Taken);
        }
        let Some(mut client) = state.waiting.remove(&id) else {
            return Err(NickError::Taken);
        };
        let online = state.nicks.len() + 1;
        let users = if online == 1 { "user" } else { "users" };
        let nick: Arc<str> = Arc::from(nick);
        client.outbox.push(format.system(format_args!(
            "welcome, {nick}! {online} {users} online; /h shows help"
        )));
        client.nick = Some(nick.clone());
        client.keys = HeldKeys::new(key.clone());
        let room_key = settings.default_room.key.clone();
        let room = state
            .rooms
            .entry(room_key.clone())
            .or_insert_with(|| Room::new(settings.default_room.shown.clone(), true));
        let announced = announces(&settings, room.len() + 1) && announce();
        client.quiet = !announced;
        let joined = announced.then(|| format.system(format_args!("{nick} joined")));
        enter(room, id, client, joined.as_ref(), format);
        state.room_of.insert(id, room_key.clone());
        state.nicks.insert(key, id);
        state.peak = state.peak.max(online);
        self.publish_user(&state, id);
        if let Some(line) = joined {
            self.publish(|node| Wire::notice(node, &room_key, &line));
        }
        Ok(nick)
    }

    /// Sends a group message or `/me` line from `id` to everyone else in their room not in
    /// ignore mode and not ignoring them, and keeps it in the room's history. Returns whom it
    /// reached and how many slow readers it was skipped for.
    pub fn say(&self, id: ClientId, line: &Bytes) -> Result<Fanout, Ignoring> {
        let mut state = self.lock();
        let State {
            room_of,
            rooms,
            history,
            ..
        } = &mut *state;
        let Some(room) = room_of.get(&id).and_then(|key| rooms.get_mut(key)) else {
            return Ok(Fanout::default());
        };
        let Some(sender) = room.members.get(&id) else {
            return Ok(Fanout::default());
        };
        if sender.ignoring {
            return Err(Ignoring);
        }
        let (key, addr) = (sender.keys.current().clone(), sender.peer.ip());
        let (mut delivered, mut skipped) = (0, 0);
        for (&other, client) in &room.members {
            if other != id && !client.ignoring && !client.hides(id, &key) {
                // A slow reader misses group messages rather than holding them all.
                let taken = client.outbox.push_or_skip(line.clone());
                delivered += u64::from(taken);
                skipped += u64::from(!taken);
            }
        }
        room.history
            .push(*history, line.clone(), id, addr, key.clone());
        if self.link.get().is_some()
            && let Some(room_key) = room_of.get(&id)
        {
            self.publish(|node| Wire::Said {
                node,
                room: room_key.to_string(),
                line: String::from_utf8_lossy(line).into_owned(),
                from: id,
                key: key.to_string(),
            });
        }
        Ok(Fanout { delivered, skipped })
    }

    /// Sends `text` from `from` (nickname `from_nick`) to the user named `to` (unless they
    /// ignore the sender, who is not told), and the same line back to the sender, followed
    /// by `* to is away: MESSAGE` if they are away.
    pub fn whisper(
        &self,
        from: ClientId,
        from_nick: &str,
        to: &str,
        text: &str,
    ) -> Result<(), NoSuchUser> {
        let format = self.format();
        let state = self.lock();
        let target = state
            .nicks
            .get(&*nick::key(to))
            .and_then(|&id| Some((id, state.client(id)?)));
        let Some((target_id, target)) = target else {
            return self.whisper_remote(&state, from, from_nick, to, text, format);
        };
        let to_nick = target.nick.as_deref().unwrap_or(to);
        let line = format.private(from_nick, to_nick, text);
        let sender = state.client(from);
        let from_key = sender.map(|s| &**s.keys.current()).unwrap_or("");
        if !target.hides(from, from_key) {
            target.outbox.push(line.clone());
        }
        if target_id != from
            && let Some(sender) = sender
        {
            sender.outbox.push(line);
            if let Some(away) = target.away() {
                sender
                    .outbox
                    .push(format.system(format_args!("{to_nick} is away: {away}")));
            }
        }
        Ok(())
    }

    /// Flips ignore mode for `id`; returns the new mode.
    pub fn toggle_ignore(&self, id: ClientId) -> bool {
        let mut state = self.lock();
        match state.client_mut(id) {
            Some(client) => {
                client.ignoring = !client.ignoring;
                let on = client.ignoring;
                self.publish_user(&state, id);
                on
            }
            None => false,
        }
    }

    /// Removes `id`. If it was logged in, the others in its room get `* nick left`. Calling
    /// it again for the same id does nothing.
    pub fn leave(&self, id: ClientId) -> Option<Arc<str>> {
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let left = |nick: &str, here: usize, quiet: bool| {
            (!quiet && announces(&settings, here))
                .then(|| format.system(format_args!("{nick} left")))
        };
        self.remove(id, left)
    }

    /// Removes a connection and, if it was logged in, tells the others in its room with the
    /// line `announce` builds from the nickname, the number in the room before it left and
    /// whether it came unannounced, if it builds one.
    fn remove(
        &self,
        id: ClientId,
        announce: impl Fn(&str, usize, bool) -> Option<Bytes>,
    ) -> Option<Arc<str>> {
        let mut state = self.lock();
        let state = &mut *state;
        if state.waiting.remove(&id).is_some() {
            return None;
        }
        let room_key = state.room_of.remove(&id)?;
        let room = state.rooms.get_mut(&room_key)?;
        let client = room.members.remove(&id)?;
        let nick = client.nick?;
        state.nicks.remove(client.keys.current());
        let line = announce(&nick, room.len() + 1, client.quiet);
        if let Some(line) = &line {
            room.tell_all(line);
        }
        self.remove_if_unused(state, &room_key);
        self.publish(|node| Wire::Gone { node, id });
        if let Some(line) = line {
            self.publish(|node| Wire::notice(node, &room_key, &line));
        }
        self.release(client.keys.current());
        Some(nick)
    }

    /// Panics while holding the registry lock, as a bug in a session would.
    #[cfg(test)]
    pub(crate) fn panic_holding_lock(&self) {
        let _state = self.lock();
        panic!("a bug while holding the hub lock");
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a panic elsewhere cannot corrupt them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn client(&self, id: ClientId) -> Option<&Client> {
        match self.room_of.get(&id) {
            Some(key) => self.rooms.get(key)?.members.get(&id),
            None => self.waiting.get(&id),
        }
    }

    fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        match self.room_of.get(&id) {
            Some(key) => self.rooms.get_mut(key)?.members.get_mut(&id),
            None => self.waiting.get_mut(&id),
        }
    }

    /// Every connection, logged in or not, with its room's name if it is in one.
    fn every_client(&self) -> impl Iterator<Item = (ClientId, &Client, Option<&Arc<str>>)> {
        let waiting = self.waiting.iter().map(|(&id, c)| (id, c, None));
        let joined = self
            .rooms
            .values()
            .flat_map(|r| r.members.iter().map(move |(&id, c)| (id, c, Some(&r.name))));
        waiting.chain(joined)
    }
}

/// `* WHO set the topic: TEXT`, or `* WHO cleared the topic`.
fn topic_line(format: Formatter, who: &str, topic: Option<&str>) -> Bytes {
    match topic {
        Some(topic) => format.system(format_args!("{who} set the topic: {topic}")),
        None => format.system(format_args!("{who} cleared the topic")),
    }
}

/// Whether joins and leaves are announced with `here` users in the room.
fn announces(settings: &RoomSettings, here: usize) -> bool {
    let max = settings.announce_max;
    max == 0 || here <= max
}
