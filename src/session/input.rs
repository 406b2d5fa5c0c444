//! A session's input: bytes to lines under flood control and the turn's quota. What a line
//! means is in [`super::lines`].

use bytes::Bytes;
use tokio::time::Instant;

use super::{EVENTS_PER_TURN, Leave, Session, TELNET_COMMAND_COST, TURN_TIME};
use crate::codec::TelnetEvent;
use crate::events;
use crate::sanitize;

impl Session {
    /// Acts on buffered input until it runs out, flood control says wait, or the client
    /// leaves. Returns how many bytes of `data` were used.
    ///
    /// Flood control covers everything a client can send: every line (empty ones, nickname
    /// attempts and commands too) takes a token, an over-long line takes one, and each
    /// telnet command takes [`TELNET_COMMAND_COST`]. Whatever the input, a connection that
    /// sends faster than the rate gets no more of its input read until the rate allows.
    pub(super) fn process(&mut self, mut data: &[u8], now: Instant) -> usize {
        let total = data.len();
        let mut events = 0;
        let turn_ends = now + TURN_TIME;
        // A nickname waiting for the cluster's answer stops input until it comes.
        while self.leaving.is_none() && self.pending.is_none() && events < EVENTS_PER_TURN {
            if events > 0 && Instant::now() >= turn_ends {
                break;
            }
            if let Some(line) = self.held.take() {
                if !self.flood_allows(now) {
                    self.held = Some(line);
                    break;
                }
                self.line(&line);
                events += 1;
                continue;
            }
            if data.is_empty() {
                break;
            }
            if self.flood.debt(now).is_some() {
                self.throttled();
                break;
            }
            let (used, event) = self.decoder.decode(data);
            data = &data[used..];
            events += usize::from(event.is_some());
            let line = match event {
                Some(TelnetEvent::Line(raw)) => Some(sanitize::clean(raw)),
                _ => None,
            };
            let too_long = event == Some(TelnetEvent::TooLong);
            let are_you_there = event == Some(TelnetEvent::AreYouThere);
            let commands = self.decoder.take_commands();
            if commands > 0 {
                self.flood
                    .charge(f64::from(commands) * TELNET_COMMAND_COST, now);
            }
            // Telnet answers go out before anything said about the same input.
            if let Some(replies) = self.decoder.take_replies() {
                self.send(Bytes::from(replies));
            }
            if too_long {
                self.flood.charge(1.0, now);
                let max = self.config.chat.max_line_bytes;
                self.error(format_args!("line too long (max {max} bytes)"));
            }
            if are_you_there {
                self.are_you_there();
            }
            if let Some(line) = line {
                self.held = Some(line);
            }
        }
        total - data.len()
    }

    /// Whether flood control lets a line through now.
    fn flood_allows(&mut self, now: Instant) -> bool {
        match self.flood.take(now) {
            Ok(()) => {
                if self.flood.is_full() {
                    self.flood_warned = false;
                }
                true
            }
            Err(_) => {
                self.throttled();
                false
            }
        }
    }

    /// Input is held back: says so once per flood episode.
    fn throttled(&mut self) {
        if std::mem::replace(&mut self.flood_warned, true) {
            return;
        }
        let rate = self.config.limits.flood_rate;
        self.error(format_args!("slow down: {rate} lines per second at most"));
        self.daemon.events.emit(|| events::Event::Flood {
            nick: self.nick.as_deref().unwrap_or("-").to_owned(),
            peer: self.peer.to_string(),
        });
    }

    pub(super) fn end_of_input(&mut self) {
        if let Some(raw) = self.decoder.finish() {
            let line = sanitize::clean(raw);
            self.line(&line);
        }
        if self.leaving.is_none() {
            self.leave(Leave::Closed);
        }
    }
}
