//! What a node starting late asks of one running node: the rooms' topics and history, so
//! they are the same on every node. History stays in memory, on the nodes, as on one node.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Hub;
use super::room::Room;

/// The most bytes of history one answer carries per room; older lines beyond it are left out
/// (NATS messages are at most 1 MB by default).
pub const HISTORY_BYTES: usize = 512 * 1024;

/// One room's shared state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomState {
    /// Its key.
    pub key: String,
    /// Its name as shown.
    pub shown: String,
    /// Its topic.
    pub topic: Option<String>,
    /// Its history, oldest first: (line as shown, author's nickname key, author's address).
    pub history: Vec<(String, String, String)>,
}

impl Hub {
    /// Every room's topic and history, for a node that starts after this one.
    pub fn room_states(&self) -> Vec<RoomState> {
        let state = self.lock();
        state
            .rooms
            .iter()
            .map(|(key, room)| {
                let mut history: Vec<(String, String, String)> = room
                    .history
                    .said()
                    .map(|(line, key, addr)| {
                        let text = String::from_utf8_lossy(line).into_owned();
                        (text, key.to_string(), addr.to_string())
                    })
                    .collect();
                let mut bytes = 0;
                let keep = history
                    .iter()
                    .rev()
                    .take_while(|(line, ..)| {
                        bytes += line.len();
                        bytes <= HISTORY_BYTES
                    })
                    .count();
                history.drain(..history.len() - keep);
                RoomState {
                    key: key.to_string(),
                    shown: room.name.to_string(),
                    topic: room.topic.as_deref().map(str::to_owned),
                    history,
                }
            })
            .collect()
    }

    /// Takes what a running node knows of the rooms: topics where this node has none, and
    /// history where this node has none yet.
    pub fn seed(&self, rooms: Vec<RoomState>) {
        let mut state = self.lock();
        let max = state.history;
        for seeded in rooms {
            let key: Arc<str> = Arc::from(seeded.key.as_str());
            match state.rooms.get_mut(&key) {
                Some(room) => apply(room, seeded, max),
                // A user room whose users this node has not heard of yet: kept until they
                // are (see `take_seed`).
                None => {
                    state.seeds.insert(key, seeded);
                }
            }
        }
    }
}

/// Gives `room` the topic and history of `seeded` where it has none.
pub(super) fn apply(room: &mut Room, seeded: RoomState, max: usize) {
    if room.topic.is_none() {
        room.topic = seeded.topic.map(Arc::from);
    }
    if room.history.is_empty() {
        for (line, author, addr) in seeded.history {
            let addr = addr.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
            room.history
                .push(max, Bytes::from(line), 0, addr, Arc::from(author));
        }
    }
}
