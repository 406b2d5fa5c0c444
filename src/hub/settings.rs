//! What the rooms take from the configuration, and putting a new one in force: configured
//! rooms made, their topics set, histories trimmed, without moving anyone.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::room::{self, Room};
use super::{Hub, RoomName, State, topic_line};
use crate::config::Config;
use crate::events::{Event, Events};
use crate::format::Formatter;

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
            link: Default::default(),
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

    /// Removes the room `key` if it is an empty user room.
    pub(super) fn remove_if_unused(&self, state: &mut State, key: &str) {
        let unused = state
            .rooms
            .get(key)
            .is_some_and(|r| !r.configured && r.len() == 0);
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
            .filter(|(_, r)| !r.configured && r.len() == 0)
            .map(|(k, _)| k.clone())
            .collect();
        for key in unused {
            self.remove_if_unused(state, &key);
        }
    }
}
