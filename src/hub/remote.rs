//! Users on other nodes of a cluster: what this node knows of them (their nickname, room and
//! state, mirrored from the bus), what it tells the others of its own users, and delivering
//! what they say to the users here.
//!
//! Remote users get a local id from the same counter as connections, so rooms, nicknames and
//! ignores treat them like anyone else; they have no outbox here, their node delivers to them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::warn;

use super::room::Room;
use super::{ClientId, Hub, State, announces};
use crate::cluster::Out;
use crate::cluster::wire::{UserState, Wire};
use crate::format::Formatter;

/// A user on another node, as this node mirrors them.
#[derive(Debug, Clone)]
pub(super) struct Remote {
    pub node: Arc<str>,
    /// Their connection id on their node.
    pub id: u64,
    pub nick: Arc<str>,
    pub key: Arc<str>,
    pub ignoring: bool,
    pub away: Option<Arc<str>>,
    pub peer: String,
}

/// Where the hub sends what other nodes must hear: the cluster's outbound queue.
#[derive(Debug)]
pub struct Link {
    /// This node's name.
    pub node: Arc<str>,
    tx: mpsc::Sender<Out>,
    /// Messages dropped because the queue to NATS was full.
    dropped: std::sync::atomic::AtomicU64,
}

impl Link {
    /// A link for `node` sending into `tx`.
    pub fn new(node: Arc<str>, tx: mpsc::Sender<Out>) -> Link {
        Link {
            node,
            tx,
            dropped: Default::default(),
        }
    }

    fn send(&self, out: Out) {
        if self.tx.try_send(out).is_err() {
            let before = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if before.is_power_of_two() {
                warn!(
                    dropped = before + 1,
                    "cluster: outbound queue full; messages to other nodes dropped"
                );
            }
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The hub's cluster side, set once at start when there is a `[cluster]`.
pub(super) type LinkCell = OnceLock<Link>;

impl Hub {
    /// Joins this hub to a cluster: from now on it tells `link` what its users do.
    pub fn link(&self, link: Link) {
        let _ = self.link.set(link);
    }

    /// The cluster link, if any.
    pub fn cluster_link(&self) -> Option<&Link> {
        self.link.get()
    }

    /// Tells the other nodes, if there are any, what `wire` (given this node's name) says.
    pub(super) fn publish(&self, wire: impl FnOnce(String) -> Wire) {
        if let Some(link) = self.link.get() {
            link.send(Out::Wire(wire(link.node.to_string())));
        }
    }

    /// Frees nickname key `key` in the cluster's store.
    pub(super) fn release(&self, key: &str) {
        if let Some(link) = self.link.get() {
            link.send(Out::Release(key.to_owned()));
        }
    }

    /// Every user of this node, for a roster.
    pub fn roster(&self) -> Vec<UserState> {
        let state = self.lock();
        let ids = state.rooms.values().flat_map(|r| r.members.keys().copied());
        ids.filter_map(|id| Hub::user_state(&state, id)).collect()
    }

    /// The state of local user `id` as other nodes should see it.
    pub(super) fn user_state(state: &State, id: ClientId) -> Option<UserState> {
        let room_key = state.room_of.get(&id)?;
        let room = state.rooms.get(room_key)?;
        let c = room.members.get(&id)?;
        Some(UserState {
            id,
            nick: c.nick.as_deref()?.to_owned(),
            key: c.keys.current().to_string(),
            room: room_key.to_string(),
            room_shown: room.name.to_string(),
            ignoring: c.ignoring,
            away: c.away().map(|a| a.to_string()),
            peer: c.peer.to_string(),
        })
    }

    /// Tells the other nodes local user `id`'s state now.
    pub(super) fn publish_user(&self, state: &State, id: ClientId) {
        if self.link.get().is_some()
            && let Some(user) = Hub::user_state(state, id)
        {
            self.publish(|node| Wire::User { node, user });
        }
    }

    /// A private message from local user `from` to `to`, a user on another node: sent there,
    /// echoed here with their away message.
    pub(super) fn whisper_remote(
        &self,
        state: &State,
        from: ClientId,
        from_nick: &str,
        to: &str,
        text: &str,
        format: Formatter,
    ) -> Result<(), super::NoSuchUser> {
        let key = crate::nick::key(to);
        let target = state
            .nicks
            .get(&*key)
            .and_then(|id| state.rooms.get(state.room_of.get(id)?)?.remote.get(id))
            .ok_or(super::NoSuchUser)?;
        let line = format.private(from_nick, &target.nick, text);
        let sender = state.client(from).ok_or(super::NoSuchUser)?;
        self.publish(|node| Wire::Whisper {
            node,
            to: target.key.to_string(),
            line: String::from_utf8_lossy(&line).into_owned(),
            from,
            key: sender.keys.current().to_string(),
        });
        sender.outbox.push(line);
        if let Some(away) = &target.away {
            let nick = &target.nick;
            sender
                .outbox
                .push(format.system(format_args!("{nick} is away: {away}")));
        }
        Ok(())
    }

    /// Asks the node of remote user `nick` to kick them; returns their nickname.
    pub fn kick_remote(
        &self,
        nick: &str,
        reason: Option<&str>,
        by: u32,
    ) -> Result<Arc<str>, super::NoSuchUser> {
        let state = self.lock();
        let key = crate::nick::key(nick);
        let remote = state
            .nicks
            .get(&*key)
            .and_then(|id| state.rooms.get(state.room_of.get(id)?)?.remote.get(id))
            .ok_or(super::NoSuchUser)?;
        let (to, nick) = (remote.node.to_string(), remote.nick.clone());
        self.publish(|node| Wire::Kick {
            node,
            to,
            nick: nick.to_string(),
            reason: reason.map(str::to_owned),
            by,
        });
        Ok(nick)
    }

    /// Acts on what another node said.
    pub fn apply_remote(&self, wire: Wire) {
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        let state = &mut *state;
        match wire {
            Wire::Said {
                node,
                room,
                line,
                from,
                key,
            } => {
                let from = state.remote_id(&node, from);
                let history = state.history;
                if let Some(room) = state.rooms.get_mut(&*room) {
                    let line = Bytes::from(line);
                    for client in room.members.values() {
                        if !client.ignoring && !client.hides(from, &key) {
                            client.outbox.push_or_skip(line.clone());
                        }
                    }
                    // Their address, so a ban on it takes their lines out of history here too.
                    let addr = room
                        .remote
                        .get(&from)
                        .and_then(|r| r.peer.parse::<std::net::SocketAddr>().ok())
                        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
                    room.history.push(history, line, from, addr, Arc::from(key));
                }
            }
            Wire::Notice { room, line, .. } => {
                if let Some(room) = state.rooms.get(&*room) {
                    room.tell_all(&Bytes::from(line));
                }
            }
            Wire::User { node, user } => state.upsert(&node, user),
            Wire::Gone { node, id } => {
                state.forget(&node, id);
                self.tidy(state);
            }
            Wire::Whisper {
                to,
                line,
                from,
                key,
                node,
            } => {
                let from = state.remote_id(&node, from);
                let target = state.nicks.get(&*to).and_then(|&id| state.client(id));
                if let Some(target) = target
                    && !target.hides(from, &key)
                {
                    target.outbox.push(Bytes::from(line));
                }
            }
            Wire::Topic {
                room, topic, line, ..
            } => {
                if let Some(room) = state.rooms.get_mut(&*room) {
                    room.topic = topic.map(Arc::from);
                    room.tell_all(&Bytes::from(line));
                }
            }
            Wire::Wall { room, line, .. } => {
                let line = Bytes::from(line);
                for (key, r) in &state.rooms {
                    if room.as_deref().is_none_or(|only| only == &**key) {
                        r.tell_all(&line);
                    }
                }
            }
            Wire::Roster { node, users } => {
                let known: Vec<u64> = state
                    .remote_ids
                    .keys()
                    .filter(|(n, _)| **n == *node)
                    .map(|(_, id)| *id)
                    .collect();
                for id in known {
                    if !users.iter().any(|u| u.id == id) {
                        state.forget(&node, id);
                    }
                }
                for user in users {
                    state.upsert(&node, user);
                }
                self.tidy(state);
            }
            Wire::Bye { node } => {
                let _ = self.node_gone_locked(state, &node, &settings, format);
            }
            Wire::Hello { .. } | Wire::Alive { .. } | Wire::Kick { .. } => {}
        }
    }

    /// Every user of `node`, which stopped answering, leaves: the users here see
    /// `* nick left` in their rooms. Returns the nickname keys they held.
    pub fn node_gone(&self, node: &str) -> Vec<String> {
        let settings = self.settings();
        let format = Formatter::new(settings.timestamps);
        let mut state = self.lock();
        self.node_gone_locked(&mut state, node, &settings, format)
    }

    fn node_gone_locked(
        &self,
        state: &mut State,
        node: &str,
        settings: &super::RoomSettings,
        format: Formatter,
    ) -> Vec<String> {
        let ids: Vec<u64> = state
            .remote_ids
            .keys()
            .filter(|(n, _)| &**n == node)
            .map(|(_, id)| *id)
            .collect();
        let mut keys = Vec::new();
        for id in ids {
            if let Some((room_key, remote)) = state.forget(node, id)
                && let Some(room) = state.rooms.get(&room_key)
            {
                keys.push(remote.key.to_string());
                if announces(settings, room.len() + 1) {
                    room.tell_all(&format.system(format_args!("{} left", remote.nick)));
                }
            }
        }
        self.tidy(state);
        keys
    }

    /// Removes user rooms nobody is in any more.
    fn tidy(&self, state: &mut State) {
        let empty: Vec<Arc<str>> = state
            .rooms
            .iter()
            .filter(|(_, r)| !r.configured && r.len() == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for key in empty {
            self.remove_if_unused(state, &key);
        }
    }
}

impl State {
    /// The local id of remote user `id` on `node`, made if new.
    fn remote_id(&mut self, node: &str, id: u64) -> ClientId {
        if let Some(&local) = self.remote_ids.get(&(Arc::from(node), id)) {
            return local;
        }
        self.next_id += 1;
        let local = self.next_id;
        self.remote_ids.insert((Arc::from(node), id), local);
        local
    }

    /// Records remote `user` of `node` as they are now.
    fn upsert(&mut self, node: &str, user: UserState) {
        let local = self.remote_id(node, user.id);
        let old = self.take_remote(local);
        if let Some(old) = &old
            && old.key.as_ref() != user.key
            && self.nicks.get(&old.key) == Some(&local)
        {
            self.nicks.remove(&old.key);
        }
        let key: Arc<str> = Arc::from(user.key);
        // A name held here wins over a stale claim from elsewhere.
        self.nicks.entry(key.clone()).or_insert(local);
        let room_key: Arc<str> = Arc::from(user.room);
        let seed = self.seeds.remove(&room_key);
        let max = self.history;
        let room = self.rooms.entry(room_key.clone()).or_insert_with(|| {
            let mut room = Room::new(Arc::from(user.room_shown), false);
            if let Some(seed) = seed {
                super::seed::apply(&mut room, seed, max);
            }
            room
        });
        room.remote.insert(
            local,
            Remote {
                node: Arc::from(node),
                id: user.id,
                nick: Arc::from(user.nick),
                key,
                ignoring: user.ignoring,
                away: user.away.map(Arc::from),
                peer: user.peer,
            },
        );
        self.room_of.insert(local, room_key);
        let online = self.nicks.len();
        self.peak = self.peak.max(online);
    }

    /// Takes remote user `local` out of their room; returns what was known of them.
    fn take_remote(&mut self, local: ClientId) -> Option<Remote> {
        let room_key = self.room_of.remove(&local)?;
        self.rooms.get_mut(&room_key)?.remote.remove(&local)
    }

    /// Forgets remote user `id` of `node`; returns their room and what was known of them.
    fn forget(&mut self, node: &str, id: u64) -> Option<(Arc<str>, Remote)> {
        let local = self.remote_ids.remove(&(Arc::from(node), id))?;
        let room_key = self.room_of.get(&local).cloned()?;
        let remote = self.take_remote(local)?;
        if self.nicks.get(&remote.key) == Some(&local) {
            self.nicks.remove(&remote.key);
        }
        Some((room_key, remote))
    }
}

/// Remote users by local id, in a room.
pub(super) type RemoteMembers = HashMap<ClientId, Remote>;
