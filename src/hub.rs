//! The room: who is connected, under which nickname, and fan-out to their outboxes.
//!
//! One std `Mutex` guards the registry. Every method holds it only to look up or push into
//! outboxes, which never waits (see [`Outbox::push`]), so a slow client cannot hold up a
//! broadcast and no method awaits while holding the lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::format::Formatter;
use crate::nick::{self, NickError};
use crate::outbox::Outbox;

/// Identifies one connection for its whole life.
pub type ClientId = u64;

/// The shared registry of connections.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    format: Formatter,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<ClientId, Client>,
    /// Nickname key ([`nick::key`]) to its owner, for logged-in clients only.
    nicks: HashMap<String, ClientId>,
    next_id: ClientId,
}

#[derive(Debug)]
struct Client {
    nick: Option<Arc<str>>,
    #[allow(dead_code)] // read by the admin listing
    peer: SocketAddr,
    outbox: Arc<Outbox>,
    ignoring: bool,
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

impl Hub {
    /// An empty room whose lines are built by `format`.
    pub fn new(format: Formatter) -> Hub {
        Hub {
            state: Mutex::default(),
            format,
        }
    }

    /// How lines for this room are formatted.
    pub fn format(&self) -> Formatter {
        self.format
    }

    /// Registers a new connection that has not chosen a nickname yet.
    pub fn connect(&self, peer: SocketAddr, outbox: Arc<Outbox>) -> ClientId {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        let client = Client {
            nick: None,
            peer,
            outbox,
            ignoring: false,
        };
        state.clients.insert(id, client);
        id
    }

    /// Gives `id` the nickname `nick` if nobody online has it, sends them the welcome line
    /// and everyone else `* nick joined`, all in one step so nobody sees a half-joined user.
    pub fn login(&self, id: ClientId, nick: &str) -> Result<Arc<str>, NickError> {
        let key = nick::key(nick);
        let mut state = self.lock();
        if state.nicks.contains_key(&key) {
            return Err(NickError::Taken);
        }
        let nick: Arc<str> = Arc::from(nick);
        let Some(client) = state.clients.get_mut(&id) else {
            return Err(NickError::Taken);
        };
        client.nick = Some(nick.clone());
        state.nicks.insert(key, id);
        let online = state.nicks.len();
        let users = if online == 1 { "user" } else { "users" };
        let welcome = self.format.system(format_args!(
            "welcome, {nick}! {online} {users} online; /h shows help"
        ));
        let joined = self.format.system(format_args!("{nick} joined"));
        for (&other, client) in &state.clients {
            if other == id {
                client.outbox.push(welcome.clone());
            } else if client.nick.is_some() {
                client.outbox.push(joined.clone());
            }
        }
        Ok(nick)
    }

    /// Sends a group message from `id` to every other logged-in user not in ignore mode.
    pub fn say(&self, id: ClientId, line: &Bytes) -> Result<(), Ignoring> {
        let state = self.lock();
        if state.clients.get(&id).is_some_and(|c| c.ignoring) {
            return Err(Ignoring);
        }
        for (&other, client) in &state.clients {
            if other != id && client.nick.is_some() && !client.ignoring {
                client.outbox.push(line.clone());
            }
        }
        Ok(())
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
        let state = self.lock();
        let target = state
            .nicks
            .get(&nick::key(to))
            .and_then(|id| Some((*id, state.clients.get(id)?)));
        let Some((target_id, target)) = target else {
            return Err(NoSuchUser);
        };
        let to_nick = target.nick.as_deref().unwrap_or(to);
        let line = self.format.private(from_nick, to_nick, text);
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
        members.sort_by_cached_key(|m| nick::key(&m.nick));
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
        let mut state = self.lock();
        let nick = state.clients.remove(&id)?.nick?;
        state.nicks.remove(&nick::key(&nick));
        let left = self.format.system(format_args!("{nick} left"));
        for client in state.clients.values() {
            if client.nick.is_some() {
                client.outbox.push(left.clone());
            }
        }
        Some(nick)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a panic elsewhere cannot corrupt them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(hub: &Hub, nick: &str) -> (ClientId, Arc<Outbox>) {
        let outbox = Arc::new(Outbox::new(1 << 16));
        let id = hub.connect(([127, 0, 0, 1], 1).into(), outbox.clone());
        hub.login(id, nick).unwrap();
        (id, outbox)
    }

    fn take(outbox: &Outbox) -> String {
        let mut buf = Vec::new();
        outbox.drain_into(&mut buf, usize::MAX);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn join_say_whisper_leave() {
        let hub = Hub::new(Formatter::new(false));
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
        assert_eq!(hub.login(b, "ALICE"), Err(NickError::Taken));

        hub.say(a, &hub.format().group("alice", "hi")).unwrap();
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
}
