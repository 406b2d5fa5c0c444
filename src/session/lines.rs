//! What a line means once it arrives: the nickname prompt, chat, private messages and the
//! `/` commands. The I/O loop in the parent module calls [`Session::line`] for each line.

use bytes::Bytes;
use tokio::time::Instant;
use tracing::info;

use super::{AYT_INTERVAL, LIST_MAX_BYTES, Leave, Session};
use crate::command::{self, Command};
use crate::format::{self, Formatter};
use crate::nick;
use crate::stats::add;

impl Session {
    pub(super) fn are_you_there(&mut self) {
        let now = Instant::now();
        if self.last_ayt.is_none_or(|t| now >= t + AYT_INTERVAL) {
            self.last_ayt = Some(now);
            self.send(Bytes::from_static(b"\r\n[Yes]\r\n"));
        }
    }

    /// Stops reading and leaves the room; what is queued still goes out.
    pub(super) fn leave(&mut self, leave: Leave) {
        self.daemon.hub.leave(self.id);
        self.leaving = Some(leave);
    }

    pub(super) fn line(&mut self, line: &str) {
        self.meter.line();
        self.last_line = Instant::now();
        match self.nick.clone() {
            None => self.choose_nick(line),
            Some(_) if line.is_empty() => {}
            Some(nick) => self.command(&nick, line),
        }
    }

    fn choose_nick(&mut self, line: &str) {
        if line.is_empty() {
            return self.prompt();
        }
        if command::parse(line) == Command::Quit {
            return self.leave(Leave::Quit);
        }
        let result = nick::validate(line, self.config.chat.max_nick_len)
            .and_then(|()| self.daemon.hub.login(self.id, line));
        match result {
            Ok(nick) => {
                info!(nick = &*nick, "login");
                self.nick = Some(nick);
            }
            Err(reason) => {
                info!(%reason, "nickname refused");
                self.error(format_args!("{reason}: {line}"));
                self.prompt();
            }
        }
    }

    fn command(&mut self, nick: &str, line: &str) {
        let hub = &self.daemon.hub;
        let relayed = &self.daemon.stats.lines_relayed;
        // One look at the live configuration per line: formatting and chat logging.
        let config = hub.config();
        let format = Formatter::new(config.chat.timestamps);
        match command::parse(line) {
            Command::Say(text) => {
                let msg = format.group(nick, text);
                match hub.say(self.id, &msg) {
                    Ok(skipped) => {
                        add(relayed, 1);
                        add(&self.daemon.stats.skipped_messages, skipped);
                        if config.log.chat {
                            info!(target: "natter::chat", from = nick, text, "group message");
                        }
                    }
                    Err(_) => self.error(format_args!("you are in ignore mode (/i to leave it)")),
                }
            }
            Command::Whisper { to, text } => match hub.whisper(self.id, nick, to, text) {
                Ok(()) => {
                    add(relayed, 1);
                    if config.log.chat {
                        info!(target: "natter::chat", from = nick, to, text, "private message");
                    }
                }
                Err(_) => self.error(format_args!("no such user: {to}")),
            },
            Command::WhisperUsage => self.error(format_args!("usage: @nick message")),
            Command::List => self.list(),
            Command::Help => {
                for text in command::HELP {
                    self.send(format::line(format_args!("{text}")));
                }
            }
            Command::ToggleIgnore => {
                let line = if hub.toggle_ignore(self.id) {
                    "ignore mode on: you no longer receive group messages (/i to leave it)"
                } else {
                    "ignore mode off: you receive group messages again"
                };
                self.send(format.system(format_args!("{line}")));
            }
            Command::Quit => {
                self.send(format.system(format_args!("bye, {nick}")));
                self.leave(Leave::Quit);
            }
            Command::Unknown(word) => {
                self.error(format_args!("unknown command {word} (/h for help)"));
            }
        }
    }

    fn list(&self) {
        let members = self.daemon.hub.members();
        let format = self.daemon.hub.format();
        let mut names = String::new();
        let mut shown = 0;
        for member in &members {
            if names.len() >= LIST_MAX_BYTES {
                break;
            }
            if shown > 0 {
                names.push_str(", ");
            }
            names.push_str(&member.nick);
            if member.ignoring {
                names.push_str(" (ignoring)");
            }
            shown += 1;
        }
        let more = members.len() - shown;
        let count = members.len();
        let line = if more > 0 {
            format.system(format_args!("{count} online: {names}, and {more} more"))
        } else {
            format.system(format_args!("{count} online: {names}"))
        };
        self.send(line);
    }
}
