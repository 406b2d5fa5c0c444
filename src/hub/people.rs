//! What users set about themselves: nickname changes, away messages, whom they ignore; and
//! who is in a room, as `/ls` shows it.

use std::sync::Arc;

use super::{ClientId, Hub};
use crate::cluster::wire::Wire;
use crate::events::Event;
use crate::nick::{self, NickError};

/// Most people one user may ignore.
pub const MAX_IGNORES: usize = 100;

/// One person a user ignores: the connection, and its nickname, kept current across
/// `/nick` so the ignore follows the person; once they are gone it holds their last name.
#[derive(Debug)]
pub(super) struct Ignored {
    pub id: ClientId,
    pub nick: Arc<str>,
    pub key: Arc<str>,
}

/// One user, as `/ls` shows them.
#[derive(Debug, PartialEq, Eq)]
pub struct Member {
    /// The nickname as chosen.
    pub nick: Arc<str>,
    /// Whether they are in ignore mode.
    pub ignoring: bool,
    /// Whether they are away.
    pub away: bool,
}

/// Why `/ignore` or `/unignore` did nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum IgnoreError {
    /// Nobody online has that nickname.
    NoSuchUser,
    /// One cannot ignore oneself.
    Yourself,
    /// [`MAX_IGNORES`] already.
    TooMany,
    /// `/unignore` of someone not ignored.
    NotIgnoring,
}

impl Hub {
    /// The name of `id`'s room and everyone in it, ordered by nickname.
    pub fn members(&self, id: ClientId) -> Option<(Arc<str>, Vec<Member>)> {
        let state = self.lock();
        let room = state.rooms.get(state.room_of.get(&id)?)?;
        let mut members: Vec<Member> = room
            .members
            .values()
            .filter_map(|c| {
                Some(Member {
                    nick: c.nick.clone()?,
                    ignoring: c.ignoring,
                    away: c.away().is_some(),
                })
            })
            .chain(room.remote.values().map(|r| Member {
                nick: r.nick.clone(),
                ignoring: r.ignoring,
                away: r.away.is_some(),
            }))
            .collect();
        let name = room.name.clone();
        drop(state);
        members.sort_by_cached_key(|m| nick::fold(&m.nick));
        Some((name, members))
    }

    /// Renames `id` to `new` (key `key`) if nobody else online has it; everyone in the room,
    /// the user included, gets `* old is now known as new`. Returns the old nickname.
    pub fn rename(&self, id: ClientId, new: &str, key: &str) -> Result<Arc<str>, NickError> {
        let format = self.format();
        let key: Arc<str> = Arc::from(key);
        let mut state = self.lock();
        let state = &mut *state;
        if state.nicks.get(&key).is_some_and(|&owner| owner != id) {
            return Err(NickError::Taken);
        }
        let new: Arc<str> = Arc::from(new);
        let Some(client) = state.client_mut(id) else {
            return Err(NickError::Taken);
        };
        let Some(old) = client.nick.replace(new.clone()) else {
            return Err(NickError::Taken);
        };
        let old_key = client.keys.current().clone();
        client.keys.change(key.clone());
        let peer = client.peer;
        state.nicks.remove(&old_key);
        state.nicks.insert(key.clone(), id);
        for room in state.rooms.values_mut() {
            for other in room.members.values_mut() {
                let Some(social) = other.social.as_mut() else {
                    continue;
                };
                for ignored in social.ignores.iter_mut().filter(|i| i.id == id) {
                    ignored.nick = new.clone();
                    ignored.key = key.clone();
                }
            }
        }
        // Other nodes learn the new name before they show the change, so a reply to it
        // finds the user.
        self.publish_user(state, id);
        if let Some((room_key, room)) = state
            .room_of
            .get(&id)
            .and_then(|k| Some((k, state.rooms.get(k)?)))
        {
            let line = format.system(format_args!("{old} is now known as {new}"));
            room.tell_all(&line);
            self.publish(|node| Wire::notice(node, room_key, &line));
        }
        self.release(&old_key);
        self.events.emit(|| Event::Nick {
            old: old.to_string(),
            new: new.to_string(),
            peer: peer.to_string(),
        });
        Ok(old)
    }

    /// Sets or clears `id`'s away message.
    pub fn set_away(&self, id: ClientId, away: Option<Arc<str>>) {
        let mut state = self.lock();
        if let Some(client) = state.client_mut(id) {
            client.social().away = away;
        }
        self.publish_user(&state, id);
    }

    /// `id` stops seeing what the user named `nick` says; returns their nickname as shown.
    pub fn ignore(&self, id: ClientId, nick: &str) -> Result<Arc<str>, IgnoreError> {
        let mut state = self.lock();
        let key = nick::key(nick);
        let target = *state.nicks.get(&*key).ok_or(IgnoreError::NoSuchUser)?;
        if target == id {
            return Err(IgnoreError::Yourself);
        }
        let Some(target) = state.client(target).map(|c| Ignored {
            id: target,
            nick: c.nick.clone().unwrap_or_default(),
            key: c.keys.current().clone(),
        }) else {
            return Err(IgnoreError::NoSuchUser);
        };
        let client = state.client_mut(id).ok_or(IgnoreError::NoSuchUser)?;
        let shown = target.nick.clone();
        let ignores = &mut client.social().ignores;
        if let Some(known) = ignores
            .iter_mut()
            .find(|i| i.id == target.id || i.key == target.key)
        {
            *known = target;
        } else if ignores.len() >= MAX_IGNORES {
            return Err(IgnoreError::TooMany);
        } else {
            ignores.push(target);
        }
        Ok(shown)
    }

    /// `id` sees the user named `nick` again; returns their nickname as it was ignored.
    pub fn unignore(&self, id: ClientId, nick: &str) -> Result<Arc<str>, IgnoreError> {
        let key = nick::key(nick);
        let mut state = self.lock();
        let client = state.client_mut(id).ok_or(IgnoreError::NotIgnoring)?;
        let ignores = &mut client.social().ignores;
        let at = ignores
            .iter()
            .position(|i| *i.key == *key)
            .ok_or(IgnoreError::NotIgnoring)?;
        Ok(ignores.remove(at).nick)
    }

    /// Whom `id` ignores, in the order they were ignored.
    pub fn ignored(&self, id: ClientId) -> Vec<Arc<str>> {
        let state = self.lock();
        let ignores = state.client(id).map(|c| c.ignores()).unwrap_or_default();
        ignores.iter().map(|i| i.nick.clone()).collect()
    }

    /// Whether someone with nickname key `key` is online.
    pub fn is_online(&self, key: &str) -> bool {
        self.lock().nicks.contains_key(key)
    }

    /// The room `id` is in and its topic.
    pub fn topic(&self, id: ClientId) -> Option<(Arc<str>, Option<Arc<str>>)> {
        let state = self.lock();
        let room = state.rooms.get(state.room_of.get(&id)?)?;
        Some((room.name.clone(), room.topic.clone()))
    }

    /// Sets the topic of `id`'s room, a user room, and tells everyone in it
    /// `* nick set the topic: TEXT`. A configured room's name comes back as the error.
    pub fn set_topic_by(&self, id: ClientId, topic: Arc<str>) -> Result<(), Arc<str>> {
        let format = self.format();
        let mut state = self.lock();
        let state = &mut *state;
        let nick = state
            .client(id)
            .and_then(|c| c.nick.clone())
            .unwrap_or_default();
        let Some(room) = state.room_of.get(&id).and_then(|k| state.rooms.get_mut(k)) else {
            return Ok(());
        };
        if room.configured {
            return Err(room.name.clone());
        }
        let line = super::topic_line(format, &nick, Some(&topic));
        room.tell_all(&line);
        let room_key = state
            .room_of
            .get(&id)
            .map(|k| k.to_string())
            .unwrap_or_default();
        self.publish(|node| Wire::Topic {
            node,
            room: room_key,
            topic: Some(topic.to_string()),
            line: String::from_utf8_lossy(&line).into_owned(),
        });
        self.events.emit(|| Event::Topic {
            room: room.name.to_string(),
            topic: Some(topic.to_string()),
            by: nick.to_string(),
        });
        room.topic = Some(topic);
        Ok(())
    }
}
