//! Any text as natter.toml: the loader never panics, and a file it accepts holds only
//! values inside their documented ranges (a second check of the same text agrees).

#![no_main]

use libfuzzer_sys::fuzz_target;
use natter::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, "fuzz.toml") {
        Ok(config) => {
            let l = &config.limits;
            assert!(l.flood_rate == 0.0 || (0.01..=1000.0).contains(&l.flood_rate));
            assert!(l.login_timeout <= 86_400 && l.write_timeout <= 86_400);
            assert!((1..=10_000).contains(&l.flood_burst));
            assert!((1..=64).contains(&config.chat.max_nick_len));
            assert!(config.chat.history <= 1000 && config.chat.max_rooms <= 10_000);
            // Every configured room is a valid, distinct name with a clean topic.
            let rooms = natter::hub::RoomSettings::from(&config).rooms;
            assert!(
                rooms.len() >= config.chat.rooms.len()
                    && rooms.len() <= config.chat.rooms.len() + 1
            );
            // What is accepted reads back the same.
            let again = toml::to_string(&config).expect("serializes");
            assert_eq!(config::parse(&again, "again.toml").ok(), Some(config));
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
