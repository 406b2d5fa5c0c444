//! What a line means once it arrives: the nickname prompt, chat, private messages and the
//! `/` commands. The I/O loop in the parent module calls [`Session::line`] for each line.

use bytes::Bytes;
use chrono::Utc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{AYT_INTERVAL, Leave, REPORT_BURST, REPORTS_PER_MINUTE, Session};
use crate::cause::Refused;
use crate::command::{self, Command};
use crate::events::Event;
use crate::format;
use crate::moderation::Rule;
use crate::nick::{self, HeldKeys, NickError};
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
            // Nothing to answer: re-sending the prompt would turn each byte of CRs into
            // forty bytes of output.
            _ if line.is_empty() => {}
            None => self.choose_nick(line),
            Some(nick) => self.command(&nick, line),
        }
    }

    fn choose_nick(&mut self, line: &str) {
        let visible = nick::visible(line);
        let line = &*visible;
        if command::parse(line) == Command::Quit {
            return self.leave(Leave::Quit);
        }
        let key = nick::key(line);
        let valid = self.allowed_nick(line, &key);
        if valid.is_ok()
            && let Some(ban) = self.nick_ban(&key)
        {
            return self.refuse_banned_nick(line, &ban);
        }
        if let Err(reason) = &valid {
            return self.refuse_nick(line, reason);
        }
        if self.daemon.cluster.get().is_some() {
            // The name is claimed in the cluster first; the session loop awaits that and
            // then calls `finish_login`.
            self.pending = Some(Box::new(super::Pending::Login(line.into())));
            return;
        }
        self.finish_login(line, &key);
    }

    /// Whether `nick` (key `key`) may be had by the nickname rules and the reserved list.
    pub(super) fn allowed_nick(&self, nick: &str, key: &str) -> Result<(), NickError> {
        nick::validate(nick, self.config.chat.max_nick_len)?;
        if self.daemon.is_reserved(key) {
            return Err(NickError::Reserved);
        }
        Ok(())
    }

    /// The ban in force on nickname key `key`, if any.
    pub(super) fn nick_ban(&self, key: &str) -> Option<Rule> {
        let rules = self.daemon.moderation.rules();
        rules.ban_on_nick(key, Utc::now()).cloned()
    }

    /// Logs in as `line` (key `key`), whose checks passed (and which the cluster gave this
    /// node).
    pub(super) fn finish_login(&mut self, line: &str, key: &str) {
        let config = self.daemon.config();
        let announce = || {
            let per_minute = config.limits.announces_per_minute_per_ip;
            let pace = &self.daemon.announce_pace;
            let now = Instant::now();
            pace.take(self.peer.ip(), per_minute, per_minute, now)
                .is_ok()
        };
        match self.daemon.hub.login(self.id, line, announce) {
            // A ban made between the check above and the login did not see this user online;
            // this second look sees it.
            Ok(_) if let Some(ban) = self.nick_ban(key) => self.refuse_banned_nick(line, &ban),
            Ok(nick) => {
                if self.may_log() {
                    info!(nick = &*nick, "login");
                }
                self.daemon.events.emit(|| Event::Join {
                    nick: nick.to_string(),
                    peer: self.peer.to_string(),
                });
                self.nick = Some(nick);
                self.keys = HeldKeys::new(key.into());
            }
            Err(reason) => {
                if let Some(cluster) = self.daemon.cluster.get() {
                    cluster.release(key);
                }
                self.refuse_nick(line, &reason);
            }
        }
    }

    /// Says why `nick` cannot be had, and asks again.
    pub(super) fn refuse_nick(&mut self, nick: &str, reason: &dyn std::fmt::Display) {
        if self.may_log() {
            info!(%reason, "nickname refused");
        }
        self.error(format_args!("{reason}: {nick}"));
        self.prompt();
    }

    /// Tells a client its nickname is banned, and closes.
    pub(super) fn refuse_banned_nick(&mut self, nick: &str, ban: &Rule) {
        if self.may_log() {
            info!(nick, "nickname refused: banned");
        }
        self.daemon.stats.refuse(Refused::BannedNick);
        self.daemon.events.emit(|| Event::NickBanned {
            nick: nick.to_owned(),
            peer: self.peer.to_string(),
        });
        self.error(format_args!("{}", ban.banned_text()));
        self.leave(Leave::Banned);
    }

    fn command(&mut self, nick: &str, line: &str) {
        let command = command::parse(line);
        let speaks = match command {
            Command::Say(_) | Command::Whisper { .. } | Command::Me(_) | Command::Nick(_) => true,
            Command::Topic(text) | Command::Away(text) => text.is_some(),
            _ => false,
        };
        if speaks && let Some(muted) = self.muted() {
            add(&self.daemon.stats.muted_messages, 1);
            return self.error(format_args!("{muted}"));
        }
        let format = self.daemon.hub.format();
        match command {
            Command::Say(text) => self.group(nick, text, format.group(nick, text)),
            Command::Me(text) => self.group(nick, text, format.action(nick, text)),
            Command::Whisper { to, text } => self.whisper(nick, to, text),
            Command::Usage(usage) => self.error(format_args!("usage: {usage}")),
            Command::List => self.list(),
            Command::Join(name) => self.join(name),
            Command::Rooms => self.rooms(),
            Command::Topic(text) => self.topic(text),
            Command::Nick(new) => self.change_nick(new),
            Command::Away(text) => self.away(text),
            Command::Ignore(who) => self.ignore(who),
            Command::Unignore(who) => self.unignore(who),
            Command::Help => {
                for text in command::HELP {
                    self.send(format::line(format_args!("{text}")));
                }
            }
            Command::ToggleIgnore => {
                let line = if self.daemon.hub.toggle_ignore(self.id) {
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
            Command::Report { about, reason } => self.report(nick, about, reason),
            Command::Unknown(word) => {
                self.error(format_args!("unknown command {word} (/h for help)"));
            }
        }
    }

    /// Why this user may not speak now (`you are muted (until TIME)`), if muted under any
    /// nickname held this connection.
    fn muted(&self) -> Option<String> {
        let rules = self.daemon.moderation.rules();
        let now = Utc::now();
        let mute = self.keys.all().find_map(|key| rules.mute_on(key, now))?;
        Some(mute.muted_text())
    }

    /// A group message or `/me` line, `msg`, to the room.
    fn group(&mut self, nick: &str, text: &str, msg: Bytes) {
        match self.daemon.hub.say(self.id, &msg) {
            Ok(fanout) => {
                add(&self.daemon.stats.lines_relayed, 1);
                add(&self.daemon.stats.deliveries, fanout.delivered);
                add(&self.daemon.stats.skipped_messages, fanout.skipped);
                if self.daemon.config().log.chat {
                    info!(target: "natter::chat", from = nick, text, "group message");
                }
            }
            Err(_) => self.error(format_args!("you are in ignore mode (/i to leave it)")),
        }
    }

    fn whisper(&mut self, nick: &str, to: &str, text: &str) {
        match self.daemon.hub.whisper(self.id, nick, to, text) {
            Ok(()) => {
                add(&self.daemon.stats.lines_relayed, 1);
                if self.daemon.config().log.chat {
                    info!(target: "natter::chat", from = nick, to, text, "private message");
                }
            }
            Err(_) => self.error(format_args!("no such user: {to}")),
        }
    }

    /// `/report`: logged, counted and sent to operators' `natterctl watch`; paced per user.
    fn report(&mut self, from: &str, about: &str, reason: &str) {
        let pace = &self.daemon.report_pace;
        let paced = pace.take(
            self.peer.ip(),
            REPORT_BURST,
            REPORTS_PER_MINUTE,
            Instant::now(),
        );
        if let Err(wait) = paced {
            let secs = wait.as_secs() + 1;
            return self.error(format_args!("too many reports; try again in {secs} s"));
        }
        let online = self.daemon.hub.is_online(&nick::key(about));
        add(&self.daemon.stats.reports, 1);
        if self.may_log() {
            warn!(from, about, online, reason, "report");
        }
        self.daemon.events.emit(|| Event::Report {
            from: from.to_owned(),
            peer: self.peer.to_string(),
            about: about.to_owned(),
            online,
            reason: reason.to_owned(),
        });
        let format = self.daemon.hub.format();
        self.send(format.system(format_args!("report about {about} sent to the operators")));
    }
}
