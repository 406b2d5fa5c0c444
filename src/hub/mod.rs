//! The rooms: who is connected, under which nickname, in which room, and fan-out to their
//! outboxes.
//!
//! One std `Mutex` guards the registry. Every method holds it only to look up or push into
//! outboxes, which never waits (see [`Outbox::push`]), so a slow client cannot hold up a
//! broadcast and no method awaits while holding the lock. Logged-in clients live inside
//! their room, so a group message walks only the room it is said in.
//!
//! The methods are split by who calls them: this file has a connection's life (connect,
//! login, join, leave) and chat; `people.rs` what users set about themselves (nickname, away,
//! ignores); `operators.rs` what natterctl does (kick, ban, wall, topics, listings).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::config::Config;
use crate::events::{Event, Events};
use crate::format::Formatter;
use crate::nick::{self, HeldKeys, NickError};
use crate::outbox::Outbox;
use crate::stats::Meter;

mod operators;
mod people;
pub mod room;
#[cfg(test)]
mod tests;

pub use operators::{Connection, RoomInfo};
pub use people::{IgnoreError, MAX_IGNORES, Member};
use room::Room;
pub use room::RoomName;

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
}

#[derive(Debug, Default)]
struct State {
    /// Connections that have not chosen a nickname yet.
    waiting: HashMap<ClientId, Client>,
    /// Rooms by [`RoomName::key`].
    rooms: HashMap<Arc<str>, Room>,
    /// The room key of every logged-in connection.
    room_of: HashMap<ClientId, Arc<str>>,
    /// Nickname key ([`nick::key`]) to its owner, for logged-in clients only.
    nicks: HashMap<Arc<str>, ClientId>,
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

/// What the rooms need to know of the configuration; the daemon owns the configuration
/// and hands the hub these at start and at every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSettings {
    /// `[chat] timestamps`.
    pub timestamps: bool,
    /// `[chat] announce_max`.
    pub announce_max: usize,
    /// `[chat] history`.
    pub history: usize,
    /// `[chat] user_rooms`.
    pub user_rooms: bool,
    /// `[chat] max_rooms`.
    pub max_rooms: usize,
    /// `[chat] default_room`.
    pub default_room: RoomName,
    /// `[[chat.rooms]]`, with the default room among them, and their topics.
    pub rooms: Vec<(RoomName, Option<Arc<str>>)>,
}

impl From<&Config> for RoomSettings {
    fn from(config: &Config) -> RoomSettings {
        let chat = &config.chat;
        // The configuration was checked; a name that still fails falls back to the default.
        let name = |text: &str| RoomName::parse(text).or_else(|_| RoomName::parse("lobby"));
        let default_room = name(&chat.default_room).expect("lobby is a room name");
        let mut rooms: Vec<(RoomName, Option<Arc<str>>)> = Vec::new();
        for room in &chat.rooms {
            let topic = room
                .topic
                .as_deref()
                .and_then(|t| room::clean_text(t).ok()?);
            if let Ok(n) = RoomName::parse(&room.name)
                && !rooms.iter().any(|(r, _)| r.key == n.key)
            {
                rooms.push((n, topic));
            }
        }
        if !rooms.iter().any(|(r, _)| r.key == default_room.key) {
            rooms.insert(0, (default_room.clone(), None));
        }
        RoomSettings {
            timestamps: chat.timestamps,
            announce_max: chat.announce_max,
            history: chat.history,
            user_rooms: chat.user_rooms,
            max_rooms: chat.max_rooms,
            default_room,
            rooms,
        }
    }
}

impl Hub {
    /// Rooms run with `settings`, the configured ones made, with events going to `events`.
    pub fn new(settings: RoomSettings, events: Events) -> Hub {
        let hub = Hub {
            state: Mutex::default(),
            settings: RwLock::new(Arc::new(settings.clone())),
            events,
        };
        hub.apply(&settings);
        hub
    }

    /// The settings in force.
    pub fn settings(&self) -> Arc<RoomSettings> {
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `settings` in force for everything from now on: new config rooms are made, and
    /// changed config topics set, without moving anyone.
    pub fn set_settings(&self, settings: RoomSettings) {
        self.apply(&settings);
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(settings);
    }

    /// How lines are formatted now.
    pub fn format(&self) -> Formatter {
        Formatter::new(self.settings().timestamps)
    }

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
        let announced = announces(&settings, room.members.len() + 1) && announce();
        client.quiet = !announced;
        enter(room, id, client, announced.then_some(&*nick), format);
        state.room_of.insert(id, room_key);
        state.nicks.insert(key, id);
        state.peak = state.peak.max(online);
        Ok(nick)
    }

    /// Moves `id` to the room `name`, making it if it does not exist and users may make
    /// rooms; `may_create` (asked only then) paces that. The old room gets
    /// `* nick left for #name`, the new one `* nick joined`; an emptied user room goes away.
    /// Returns the room's name as shown.
    pub fn join(
        &self,
        id: ClientId,
        name: &RoomName,
        may_create: impl FnOnce() -> Result<(), Duration>,
    ) -> Result<Arc<str>, JoinError> {
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        let state = &mut *state;
        let Some(from_key) = state.room_of.get(&id).cloned() else {
            return Err(JoinError::NoSuchRoom(name.shown.clone()));
        };
        if from_key == name.key {
            let shown = state.rooms.get(&from_key).map(|r| r.name.clone());
            return Err(JoinError::Already(shown.unwrap_or(name.shown.clone())));
        }
        let Some(nick) = state.client(id).and_then(|c| c.nick.clone()) else {
            return Err(JoinError::NoSuchRoom(name.shown.clone()));
        };
        if !state.rooms.contains_key(&name.key) {
            if !settings.user_rooms {
                return Err(JoinError::NoSuchRoom(name.shown.clone()));
            }
            let user_rooms = state.rooms.values().filter(|r| !r.configured).count();
            if user_rooms >= settings.max_rooms {
                return Err(JoinError::TooMany);
            }
            may_create().map_err(JoinError::TooFast)?;
            state
                .rooms
                .insert(name.key.clone(), Room::new(name.shown.clone(), false));
            self.events.emit(|| Event::RoomCreated {
                room: name.shown.to_string(),
                by: nick.to_string(),
            });
        }
        let to_name = state.rooms[&name.key].name.clone();
        let from = state.rooms.get_mut(&from_key).expect("looked up above");
        let Some(mut client) = from.members.remove(&id) else {
            return Err(JoinError::NoSuchRoom(name.shown.clone()));
        };
        if announces(&settings, from.members.len() + 1) {
            from.tell_all(&format.system(format_args!("{nick} left for {to_name}")));
        }
        self.remove_if_unused(state, &from_key);
        let room = state.rooms.get_mut(&name.key).expect("made above");
        let announced = announces(&settings, room.members.len() + 1);
        client.quiet = !announced;
        enter(room, id, client, announced.then_some(&*nick), format);
        state.room_of.insert(id, name.key.clone());
        Ok(to_name)
    }

    /// Sends a group message or `/me` line from `id` to everyone else in their room not in
    /// ignore mode and not ignoring them, and keeps it in the room's history. Returns how
    /// many slow readers it was skipped for.
    pub fn say(&self, id: ClientId, line: &Bytes) -> Result<u64, Ignoring> {
        let mut state = self.lock();
        let State {
            room_of,
            rooms,
            history,
            ..
        } = &mut *state;
        let Some(room) = room_of.get(&id).and_then(|key| rooms.get_mut(key)) else {
            return Ok(0);
        };
        let Some(sender) = room.members.get(&id) else {
            return Ok(0);
        };
        if sender.ignoring {
            return Err(Ignoring);
        }
        let (key, addr) = (sender.keys.current().clone(), sender.peer.ip());
        let mut skipped = 0;
        for (&other, client) in &room.members {
            if other != id && !client.ignoring && !client.hides(id, &key) {
                // A slow reader misses group messages rather than holding them all.
                skipped += u64::from(!client.outbox.push_or_skip(line.clone()));
            }
        }
        room.history.push(*history, line.clone(), id, addr, key);
        Ok(skipped)
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
            return Err(NoSuchUser);
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
                client.ignoring
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
        if let Some(line) = announce(&nick, room.members.len() + 1, client.quiet) {
            room.tell_all(&line);
        }
        self.remove_if_unused(state, &room_key);
        Some(nick)
    }

    /// Removes the room `key` if it is an empty user room.
    fn remove_if_unused(&self, state: &mut State, key: &str) {
        let unused = state
            .rooms
            .get(key)
            .is_some_and(|r| !r.configured && r.members.is_empty());
        if unused && let Some(room) = state.rooms.remove(key) {
            self.events.emit(|| Event::RoomRemoved {
                room: room.name.to_string(),
            });
        }
    }

    /// Makes the configured rooms, sets changed configured topics, lets rooms dropped from
    /// the configuration become user rooms, and trims histories to the new length.
    fn apply(&self, settings: &RoomSettings) {
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        let state = &mut *state;
        state.history = settings.history;
        for room in state.rooms.values_mut() {
            room.configured = false;
            room.history.trim(settings.history);
        }
        for (name, topic) in &settings.rooms {
            let room = state.rooms.entry(name.key.clone()).or_insert_with(|| {
                self.events.emit(|| Event::RoomCreated {
                    room: name.shown.to_string(),
                    by: "config".into(),
                });
                Room::new(name.shown.clone(), true)
            });
            room.configured = true;
            if room.config_topic != *topic {
                room.config_topic.clone_from(topic);
                room.topic.clone_from(topic);
                room.tell_all(&topic_line(format, "the operators", topic.as_deref()));
                self.events.emit(|| Event::Topic {
                    room: room.name.to_string(),
                    topic: topic.as_deref().map(str::to_owned),
                    by: "config".into(),
                });
            }
        }
        let unused: Vec<Arc<str>> = state
            .rooms
            .iter()
            .filter(|(_, r)| !r.configured && r.members.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in unused {
            self.remove_if_unused(state, &key);
        }
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

/// Puts `client` in `room`: they get `* you are in #room (N here)`, the topic and the
/// history; the others get `* nick joined` if `announce` names them.
fn enter(room: &mut Room, id: ClientId, client: Client, announce: Option<&str>, format: Formatter) {
    if let Some(nick) = announce {
        room.tell_all(&format.system(format_args!("{nick} joined")));
    }
    let here = room.members.len() + 1;
    let name = &room.name;
    let out = &client.outbox;
    out.push(format.system(format_args!("you are in {name} ({here} here)")));
    if let Some(topic) = &room.topic {
        out.push(format.system(format_args!("topic: {topic}")));
    }
    for line in room.history.lines() {
        // History is a courtesy: what does not fit the send queue is skipped, not fatal.
        out.push_or_skip(line.clone());
    }
    room.members.insert(id, client);
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
