//! What users set about themselves: `/nick`, `/away`, `/ignore` and `/unignore`.

use chrono::Utc;
use tokio::time::Instant;
use tracing::info;

use super::Session;
use super::rooms::bounded_list;
use crate::hub::IgnoreError;
use crate::hub::room::{self, MAX_TEXT_BYTES};
use crate::nick;

impl Session {
    /// `/nick`: every rule of the prompt, at most [`super::NICKS_PER_MINUTE`] changes a minute.
    pub(super) fn change_nick(&mut self, wanted: &str) {
        let visible = nick::visible(wanted);
        let new = &*visible;
        let now = Instant::now();
        if let Some(wait) = self.paces().nick.wait(now) {
            let secs = wait.as_secs() + 1;
            return self.error(format_args!(
                "too many nickname changes; try again in {secs} s"
            ));
        }
        let key = nick::key(new);
        if let Err(reason) = self.allowed_nick(new, &key) {
            return self.error(format_args!("{reason}: {new}"));
        }
        if self.nick_ban(&key).is_some() {
            return self.error(format_args!("nickname banned: {new}"));
        }
        if self.nick.as_deref() == Some(new) {
            return self.error(format_args!("you are already {new}"));
        }
        // In a cluster a new name is claimed there first (a case change keeps the key).
        if self.daemon.cluster.get().is_some() && **self.keys.current() != *key {
            self.pending = Some(Box::new(super::Pending::Rename(new.into())));
            return;
        }
        self.finish_rename(new, &key);
    }

    /// Renames to `new` (key `key`), whose checks passed (and which the cluster gave this
    /// node).
    pub(super) fn finish_rename(&mut self, new: &str, key: &str) {
        let now = Instant::now();
        match self.daemon.hub.rename(self.id, new, key) {
            Ok(old) => {
                let _ = self.paces().nick.take(now);
                self.nick = Some(new.into());
                self.keys.change(key.into());
                if self.may_log() {
                    info!(old = &*old, new, "nickname changed");
                }
                // A ban made between the check above and the change did not see this name.
                if let Some(ban) = self
                    .daemon
                    .moderation
                    .rules()
                    .ban_on_nick(key, Utc::now())
                    .cloned()
                {
                    self.refuse_banned_nick(new, &ban);
                }
            }
            Err(reason) => {
                if let Some(cluster) = self.daemon.cluster.get()
                    && **self.keys.current() != *key
                {
                    cluster.release(key);
                }
                self.error(format_args!("{reason}: {new}"));
            }
        }
    }

    /// `/away TEXT` or `/away`.
    pub(super) fn away(&self, text: Option<&str>) {
        let format = self.daemon.hub.format();
        let Some(text) = text else {
            self.daemon.hub.set_away(self.id, None);
            return self.send(format.system(format_args!("you are back")));
        };
        match room::clean_text(text) {
            Ok(Some(away)) => {
                self.send(format.system(format_args!("you are away: {away}")));
                self.daemon.hub.set_away(self.id, Some(away));
            }
            Ok(None) => self.error(format_args!("usage: /away [message]")),
            Err(_) => self.error(format_args!(
                "away message too long (max {MAX_TEXT_BYTES} bytes)"
            )),
        }
    }

    /// `/ignore NICK`, or `/ignore` alone to list.
    pub(super) fn ignore(&self, who: Option<&str>) {
        let hub = &self.daemon.hub;
        let format = hub.format();
        let Some(who) = who else {
            let ignored = hub.ignored(self.id);
            let line = if ignored.is_empty() {
                format.system(format_args!("you are ignoring nobody"))
            } else {
                let names = bounded_list(ignored.iter().map(|n| n.to_string()), ignored.len());
                format.system(format_args!("you are ignoring: {names}"))
            };
            return self.send(line);
        };
        match hub.ignore(self.id, who) {
            Ok(nick) => self.send(format.system(format_args!("you are ignoring {nick}"))),
            Err(IgnoreError::Yourself) => self.error(format_args!("you cannot ignore yourself")),
            Err(IgnoreError::TooMany) => self.error(format_args!(
                "you ignore {} people already; /unignore someone first",
                crate::hub::MAX_IGNORES
            )),
            Err(_) => self.error(format_args!("no such user: {who}")),
        }
    }

    /// `/unignore NICK`.
    pub(super) fn unignore(&self, who: &str) {
        let format = self.daemon.hub.format();
        match self.daemon.hub.unignore(self.id, who) {
            Ok(nick) => self.send(format.system(format_args!("you are no longer ignoring {nick}"))),
            Err(_) => self.error(format_args!("you are not ignoring {who}")),
        }
    }
}
