//! The room: who is connected, under which nickname, and fan-out to their outboxes.
//!
//! One std `Mutex` guards the registry. Every method holds it only to look up or push into
//! outboxes, which never waits (see [`Outbox::push`]), so a slow client cannot hold up a
//! broadcast and no method awaits while holding the lock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::format::Formatter;
use crate::nick::{self, NickError};
use crate::outbox::{Close, Outbox};
use crate::stats::{Meter, get};

/// Identifies one connection for its whole life.
pub type ClientId = u64;

/// The shared registry of connections.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    /// What the room needs of the configuration; a reload swaps it.
    settings: RwLock<RoomSettings>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    /// Nickname key ([`nick::key`]) to its owner, for logged-in clients only.
    nicks: HashMap<String, ClientId>,
    next_id: ClientId,
    /// Most users online at once.
    peak: usize,
}

#[derive(Debug)]
struct Client {
    nick: Option<Arc<str>>,
    peer: SocketAddr,
    since: SystemTime,
    outbox: Arc<Outbox>,
    meter: Arc<Meter>,
    ignoring: bool,
    /// Came unannounced (see [`Hub::login`]), so leaves unannounced too.
    quiet: bool,
}

/// One connection in `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// Connection number, unique since start.
    pub id: u64,
    /// Null while the user is still choosing.
    pub nick: Option<String>,
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

/// A group message was refused because its sender is in ignore mode.
#[derive(Debug, PartialEq, Eq)]
pub struct Ignoring;

/// A private message named nobody online.
#[derive(Debug, PartialEq, Eq)]
pub struct NoSuchUser;

/// One user, as `/ls` shows them.
#[derive(Debug, PartialEq, Eq)]
pub struct Member {
    /// The nickname as chosen.
    pub nick: Arc<str>,
    /// Whether they are in ignore mode.
    pub ignoring: bool,
}

/// What the room needs to know of the configuration; the daemon owns the configuration
/// and hands the room these at start and at every reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSettings {
    /// `[chat] timestamps`.
    pub timestamps: bool,
    /// `[chat] announce_max`.
    pub announce_max: usize,
}

impl From<&Config> for RoomSettings {
    fn from(config: &Config) -> RoomSettings {
        RoomSettings {
            timestamps: config.chat.timestamps,
            announce_max: config.chat.announce_max,
        }
    }
}

impl Hub {
    /// An empty room run with `settings`.
    pub fn new(settings: RoomSettings) -> Hub {
        Hub {
            state: Mutex::default(),
            settings: RwLock::new(settings),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> RoomSettings {
        *self.settings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `settings` in force for everything from now on.
    pub fn set_settings(&self, settings: RoomSettings) {
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
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
            peer,
            since: SystemTime::now(),
            outbox,
            meter,
            ignoring: false,
            quiet: false,
        };
        state.clients.insert(id, client);
        id
    }

    /// Gives `id` the nickname `nick` if nobody online has it, sends them the welcome line
    /// and everyone else `* nick joined`, all in one step so nobody sees a half-joined user.
    /// The join is announced only if the room is small enough (`announce_max`) and
    /// `announce` (asked only then) agrees; a user who came unannounced leaves unannounced.
    pub fn login(
        &self,
        id: ClientId,
        nick: &str,
        announce: impl FnOnce() -> bool,
    ) -> Result<Arc<str>, NickError> {
        let key = nick::key(nick);
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        if state.nicks.contains_key(&key) {
            return Err(NickError::Taken);
        }
        let online = state.nicks.len() + 1;
        let users = if online == 1 { "user" } else { "users" };
        let nick: Arc<str> = Arc::from(nick);
        let welcome = format.system(format_args!(
            "welcome, {nick}! {online} {users} online; /h shows help"
        ));
        let Some(client) = state.clients.get_mut(&id) else {
            return Err(NickError::Taken);
        };
        client.nick = Some(nick.clone());
        client.outbox.push(welcome);
        let announced = announces(settings, online) && announce();
        client.quiet = !announced;
        state.nicks.insert(key, id);
        state.peak = state.peak.max(online);
        if announced {
            let joined = format.system(format_args!("{nick} joined"));
            for (&other, client) in &state.clients {
                if other != id && client.nick.is_some() {
                    client.outbox.push(joined.clone());
                }
            }
        }
        Ok(nick)
    }

    /// Sends a group message from `id` to every other logged-in user not in ignore mode.
    /// Returns how many slow readers it was skipped for.
    pub fn say(&self, id: ClientId, line: &Bytes) -> Result<u64, Ignoring> {
        let state = self.lock();
        if state.clients.get(&id).is_some_and(|c| c.ignoring) {
            return Err(Ignoring);
        }
        let mut skipped = 0;
        for (&other, client) in &state.clients {
            if other != id && client.nick.is_some() && !client.ignoring {
                // A slow reader misses group messages rather than holding them all.
                skipped += u64::from(!client.outbox.push_or_skip(line.clone()));
            }
        }
        Ok(skipped)
    }

    /// Sends `text` from `from` (nickname `from_nick`) to the user named `to`, and the same
    /// line back to the sender.
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
            .get(&nick::key(to))
            .and_then(|id| Some((*id, state.clients.get(id)?)));
        let Some((target_id, target)) = target else {
            return Err(NoSuchUser);
        };
        let to_nick = target.nick.as_deref().unwrap_or(to);
        let line = format.private(from_nick, to_nick, text);
        target.outbox.push(line.clone());
        if target_id != from
            && let Some(sender) = state.clients.get(&from)
        {
            sender.outbox.push(line);
        }
        Ok(())
    }

    /// Everyone logged in, ordered by nickname.
    pub fn members(&self) -> Vec<Member> {
        let state = self.lock();
        let mut members: Vec<Member> = state
            .clients
            .values()
            .filter_map(|c| {
                Some(Member {
                    nick: c.nick.clone()?,
                    ignoring: c.ignoring,
                })
            })
            .collect();
        drop(state);
        members.sort_by_cached_key(|m| nick::fold(&m.nick));
        members
    }

    /// Flips ignore mode for `id`; returns the new mode.
    pub fn toggle_ignore(&self, id: ClientId) -> bool {
        let mut state = self.lock();
        match state.clients.get_mut(&id) {
            Some(client) => {
                client.ignoring = !client.ignoring;
                client.ignoring
            }
            None => false,
        }
    }

    /// Removes `id`. If it was logged in, everyone else gets `* nick left`. Calling it again
    /// for the same id does nothing.
    pub fn leave(&self, id: ClientId) -> Option<Arc<str>> {
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let left = |nick: &str, online: usize, quiet: bool| {
            (!quiet && announces(settings, online))
                .then(|| format.system(format_args!("{nick} left")))
        };
        self.remove(id, left)
    }

    /// Removes a logged-in user and tells everyone else with the line `announce` builds from
    /// the nickname, the number online before they left and whether they came unannounced,
    /// if it builds one.
    fn remove(
        &self,
        id: ClientId,
        announce: impl Fn(&str, usize, bool) -> Option<Bytes>,
    ) -> Option<Arc<str>> {
        let mut state = self.lock();
        let client = state.clients.remove(&id)?;
        let nick = client.nick?;
        let online = state.nicks.len();
        state.nicks.remove(&nick::key(&nick));
        let line = announce(&nick, online, client.quiet)?;
        for client in state.clients.values() {
            if client.nick.is_some() {
                client.outbox.push(line.clone());
            }
        }
        Some(nick)
    }

    /// Disconnects the user named `nick`: they get `! you were kicked[: reason]` as their last
    /// line, everyone else `* nick was kicked[ (reason)]`.
    pub fn kick(&self, nick: &str, reason: Option<&str>) -> Result<Arc<str>, NoSuchUser> {
        let id = *self.lock().nicks.get(&nick::key(nick)).ok_or(NoSuchUser)?;
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
        let client = state.clients.get_mut(&id).ok_or(NoSuchUser)?;
        client.outbox.close_with(notice, Close::Kicked);
        drop(state);
        self.remove(id, announce).ok_or(NoSuchUser)
    }

    /// Disconnects every connection `matches` picks by its address and nickname key, as a
    /// ban does: each gets `notice` as its last line, and everyone else is told
    /// `* nick was banned[ (reason)]` for each logged-in one. Returns their nicknames.
    pub fn expel(
        &self,
        matches: impl Fn(IpAddr, Option<&str>) -> bool,
        notice: &Bytes,
        reason: Option<&str>,
    ) -> Vec<Arc<str>> {
        let format = self.format();
        let suffix = reason.map(|r| format!(" ({r})")).unwrap_or_default();
        let announce =
            |nick: &str, _, _| Some(format.system(format_args!("{nick} was banned{suffix}")));
        let state = self.lock();
        let ids: Vec<ClientId> = state
            .clients
            .iter()
            .filter(|(_, c)| matches(c.peer.ip(), c.nick.as_deref().map(nick::key).as_deref()))
            .map(|(&id, c)| {
                c.outbox.close_with(notice.clone(), Close::Banned);
                id
            })
            .collect();
        drop(state);
        ids.into_iter()
            .filter_map(|id| self.remove(id, announce))
            .collect()
    }

    /// Sends `line` to the user whose nickname key is `key`, if online; says whether.
    pub fn tell(&self, key: &str, line: Bytes) -> bool {
        let state = self.lock();
        let client = state.nicks.get(key).and_then(|id| state.clients.get(id));
        client.map(|c| c.outbox.push(line)).is_some()
    }

    /// Whether someone with nickname key `key` is online.
    pub fn is_online(&self, key: &str) -> bool {
        self.lock().nicks.contains_key(key)
    }

    /// Sends `* [server] text` to every logged-in user, ignore mode or not; returns how many.
    pub fn wall(&self, text: &str) -> usize {
        let line = self.format().system(format_args!("[server] {text}"));
        let state = self.lock();
        let mut count = 0;
        for client in state.clients.values().filter(|c| c.nick.is_some()) {
            client.outbox.push(line.clone());
            count += 1;
        }
        count
    }

    /// Gives every connection `line` as its last and closes it.
    pub fn close_all(&self, line: &Bytes) {
        let state = self.lock();
        for client in state.clients.values() {
            client.outbox.close_with(line.clone(), Close::Shutdown);
        }
    }

    /// Every connection, for `natterctl list`, ordered by id.
    pub fn connections(&self) -> Vec<Connection> {
        let state = self.lock();
        let mut list: Vec<Connection> = state
            .clients
            .iter()
            .map(|(&id, c)| Connection {
                id,
                nick: c.nick.as_deref().map(str::to_owned),
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
        drop(state);
        list.sort_by_key(|c| c.id);
        list
    }

    /// (logged-in users, most ever at once).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.lock();
        (state.nicks.len(), state.peak)
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

/// Whether joins and leaves are announced with `online` users in the room.
fn announces(settings: RoomSettings, online: usize) -> bool {
    let max = settings.announce_max;
    max == 0 || online <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(hub: &Hub, nick: &str) -> (ClientId, Arc<Outbox>) {
        let outbox = Arc::new(Outbox::new(1 << 16));
        let meter = Arc::default();
        let id = hub.connect(([127, 0, 0, 1], 1).into(), outbox.clone(), meter);
        hub.login(id, nick, || true).unwrap();
        (id, outbox)
    }

    /// A hub whose lines carry no timestamps, so tests can compare them.
    fn plain_hub() -> Hub {
        Hub::new(RoomSettings {
            timestamps: false,
            announce_max: 0,
        })
    }

    fn take(outbox: &Outbox) -> String {
        let mut buf = Vec::new();
        outbox.drain_into(&mut buf, usize::MAX);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn join_say_whisper_leave() {
        let hub = plain_hub();
        let (a, ao) = user(&hub, "alice");
        assert_eq!(
            take(&ao),
            "* welcome, alice! 1 user online; /h shows help\r\n"
        );
        let (b, bo) = user(&hub, "Bob");
        assert_eq!(take(&ao), "* Bob joined\r\n");
        assert_eq!(
            take(&bo),
            "* welcome, Bob! 2 users online; /h shows help\r\n"
        );
        assert_eq!(hub.login(b, "ALICE", || true), Err(NickError::Taken));

        assert_eq!(hub.say(a, &hub.format().group("alice", "hi")), Ok(0));
        assert_eq!(take(&ao), "");
        assert_eq!(take(&bo), "<alice> hi\r\n");

        hub.whisper(a, "alice", "bob", "psst").unwrap();
        assert_eq!(take(&ao), "[alice -> Bob] psst\r\n");
        assert_eq!(take(&bo), "[alice -> Bob] psst\r\n");
        assert_eq!(hub.whisper(a, "alice", "carol", "x"), Err(NoSuchUser));

        assert!(hub.toggle_ignore(b));
        hub.say(a, &hub.format().group("alice", "again")).unwrap();
        assert_eq!(take(&bo), "");
        assert_eq!(hub.say(b, &hub.format().group("Bob", "x")), Err(Ignoring));

        assert_eq!(hub.leave(b).as_deref(), Some("Bob"));
        assert_eq!(hub.leave(b), None);
        assert_eq!(take(&ao), "* Bob left\r\n");
        assert_eq!(hub.members().len(), 1);
    }

    #[test]
    fn kick_wall_and_close_all() {
        let hub = plain_hub();
        let (_, ao) = user(&hub, "alice");
        let (b, bo) = user(&hub, "bob");
        hub.toggle_ignore(b);
        take(&ao);
        take(&bo);
        assert_eq!(hub.wall("hi"), 2);
        assert_eq!(take(&bo), "* [server] hi\r\n");
        assert_eq!(hub.kick("BOB", Some("spam")).as_deref(), Ok("bob"));
        assert_eq!(take(&bo), "! you were kicked: spam\r\n");
        assert_eq!(bo.closing(), Some(Close::Kicked));
        assert_eq!(take(&ao), "* [server] hi\r\n* bob was kicked (spam)\r\n");
        assert_eq!(hub.kick("bob", None), Err(NoSuchUser));
        assert_eq!(hub.counts(), (1, 2));
        hub.close_all(&Bytes::from_static(b"bye\r\n"));
        assert_eq!(take(&ao), "bye\r\n");
        assert_eq!(ao.closing(), Some(Close::Shutdown));
    }

    #[test]
    fn announcements_stop_above_announce_max() {
        let hub = Hub::new(RoomSettings {
            timestamps: false,
            announce_max: 2,
        });
        let (_, ao) = user(&hub, "alice");
        let (b, _) = user(&hub, "bob");
        let (c, co) = user(&hub, "carol");
        take(&co);
        assert_eq!(
            take(&ao),
            "* welcome, alice! 1 user online; /h shows help\r\n* bob joined\r\n"
        );
        hub.leave(c);
        assert_eq!(take(&ao), "");
        hub.leave(b);
        assert_eq!(take(&ao), "* bob left\r\n");
        let (_, _) = user(&hub, "dave");
        hub.kick("dave", None).unwrap();
        assert_eq!(take(&ao), "* dave joined\r\n* dave was kicked\r\n");
    }

    #[test]
    fn expel_by_address_or_nick() {
        let hub = plain_hub();
        let (_, ao) = user(&hub, "alice");
        let (_, bo) = user(&hub, "Bob");
        take(&ao);
        take(&bo);
        let notice = Formatter::error(format_args!("you are banned: spam"));
        let gone = hub.expel(|_, key| key == Some("bob"), &notice, Some("spam"));
        assert_eq!(gone, vec![Arc::from("Bob")]);
        assert_eq!(take(&bo), "! you are banned: spam\r\n");
        assert_eq!(bo.closing(), Some(Close::Banned));
        assert_eq!(take(&ao), "* Bob was banned (spam)\r\n");
        assert!(hub.tell("alice", Bytes::from_static(b"x\r\n")));
        assert!(!hub.tell("bob", Bytes::from_static(b"x\r\n")));
        assert!(hub.is_online("alice"));
        let gone = hub.expel(|ip, _| ip.is_loopback(), &notice, None);
        assert_eq!(gone.len(), 1);
        assert_eq!(hub.counts().0, 0);
    }
}
