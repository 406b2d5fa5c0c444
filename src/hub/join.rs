//! Moving between rooms: `/join`, and what a user gets on entering a room.

use std::sync::Arc;
use std::time::Duration;

use super::room::Room;
use super::{Client, ClientId, Hub, JoinError, RoomName, announces};
use bytes::Bytes;

use crate::cluster::wire::Wire;
use crate::events::Event;
use crate::format::Formatter;

impl Hub {
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
        if announces(&settings, from.len() + 1) {
            let line = format.system(format_args!("{nick} left for {to_name}"));
            from.tell_all(&line);
            self.publish(|node| Wire::notice(node, &from_key, &line));
        }
        self.remove_if_unused(state, &from_key);
        let room = state.rooms.get_mut(&name.key).expect("made above");
        let announced = announces(&settings, room.len() + 1);
        client.quiet = !announced;
        let joined = announced.then(|| format.system(format_args!("{nick} joined")));
        enter(room, id, client, joined.as_ref(), format);
        state.room_of.insert(id, name.key.clone());
        self.publish_user(state, id);
        if let Some(line) = joined {
            self.publish(|node| Wire::notice(node, &name.key, &line));
        }
        Ok(to_name)
    }
}

/// Puts `client` in `room`: they get `* you are in #room (N here)`, the topic and the
/// history; the others get `joined`, the `* nick joined` line, if there is one.
pub(super) fn enter(
    room: &mut Room,
    id: ClientId,
    client: Client,
    joined: Option<&Bytes>,
    format: Formatter,
) {
    if let Some(line) = joined {
        room.tell_all(line);
    }
    let here = room.len() + 1;
    let name = &room.name;
    let out = &client.outbox;
    out.push(format.system(format_args!("you are in {name} ({here} here)")));
    if let Some(topic) = &room.topic {
        out.push(format.system(format_args!("topic: {topic}")));
    }
    for line in room.history.lines(|author, key| client.hides(author, key)) {
        // History is a courtesy: what does not fit the send queue is skipped, not fatal.
        out.push_or_skip(line.clone());
    }
    room.members.insert(id, client);
}
