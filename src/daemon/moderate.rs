//! What operators do to users through natterctl: bans and mutes, which go to disk before they
//! take effect, and the sweep that takes ended ones out of the file.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use tracing::{error, info};

use super::Daemon;
use super::outcome::{BanReply, BansReply, Failure, KickReply, MuteReply, UnbanReply, UnmuteReply};
use crate::events::Event;
use crate::format::Formatter;
use crate::moderation::{self, Rule, Target};
use crate::stats::add;
use crate::{nick, sanitize};

/// How often ended bans and mutes are taken out of the file. They stop applying at their
/// end to the second regardless; this only tidies.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

impl Daemon {
    /// Disconnects the user named `nick`, telling them and everyone else why; counted,
    /// logged and sent to watchers here, the one place a kick is recorded.
    pub fn kick(&self, nick: &str, reason: Option<String>, uid: u32) -> Result<KickReply, Failure> {
        let reason = reason
            .map(|r| sanitize::clean(r.as_bytes()))
            .filter(|r| !r.is_empty());
        // A user on another node of a cluster is kicked there.
        let kicked = self
            .hub
            .kick(nick, reason.as_deref())
            .or_else(|_| self.hub.kick_remote(nick, reason.as_deref(), uid));
        let Ok(nick) = kicked else {
            return Err(Failure::new("not_found", format!("no such user: {nick}")));
        };
        add(&self.stats.kicks, 1);
        let reason_text = reason.as_deref().unwrap_or("");
        info!(nick = &*nick, reason = reason_text, "kicked");
        self.events.emit(|| Event::Kick {
            nick: nick.to_string(),
            reason: reason.clone(),
            by: uid,
        });
        Ok(KickReply {
            nick: nick.to_string(),
        })
    }

    /// Bans `target` for `duration` (None: until lifted), set by the operator `uid`.
    /// Connections it matches are told why and closed at once.
    pub fn ban(
        &self,
        target: &str,
        duration: Option<Duration>,
        reason: Option<String>,
        uid: u32,
    ) -> Result<BanReply, Failure> {
        let target: Target = target.parse().map_err(|e| Failure::new("bad_target", e))?;
        let rule = new_rule(target, duration, reason, uid)?;
        self.save(|rules| {
            moderation::set(&mut rules.bans, rule.clone());
            Some(())
        })?;
        let kicked = self.enforce_ban(&rule);
        Ok(BanReply {
            target: rule.target.to_string(),
            expires: rule.expires,
            kicked,
        })
    }

    /// Puts a new ban into effect here: the users it matches are told and closed (and
    /// their lines leave history), and it is logged and sent to watchers. Returns their
    /// nicknames.
    fn enforce_ban(&self, rule: &Rule) -> Vec<String> {
        let notice = Formatter::error(format_args!("{}", rule.banned_text()));
        let key = match &rule.target {
            Target::Nick { key, .. } => Some(key.clone()),
            Target::Net(_) => None,
        };
        let matches = |ip, keys: &[&str]| match &key {
            Some(key) => keys.contains(&key.as_str()),
            None => rule.target.holds(ip),
        };
        let kicked: Vec<String> = self
            .hub
            .expel(matches, &notice, rule.reason.as_deref())
            .iter()
            .map(ToString::to_string)
            .collect();
        let target = rule.target.to_string();
        info!(
            %target,
            reason = rule.reason.as_deref().unwrap_or(""),
            expires = ?rule.expires,
            ?kicked,
            "banned"
        );
        self.events.emit(|| Event::Ban {
            target: target.clone(),
            reason: rule.reason.clone(),
            expires: rule.expires,
            by: rule.set_by,
            kicked: kicked.clone(),
        });
        kicked
    }

    /// Puts into effect here what another node of the cluster changed: `before` were the
    /// rules in force until now. New bans close the users they match, new mutes are told to
    /// their user; everything is logged and sent to watchers.
    pub fn apply_shared_rules(&self, before: &moderation::Rules) {
        let now = self.moderation.rules();
        let new = |list: &[Rule], old: &[Rule]| -> Vec<Rule> {
            list.iter().filter(|r| !old.contains(r)).cloned().collect()
        };
        for rule in new(&now.bans, &before.bans) {
            self.enforce_ban(&rule);
        }
        for rule in new(&now.mutes, &before.mutes) {
            let nick = rule.target.to_string();
            let notice = Formatter::error(format_args!("{}", rule.muted_notice()));
            self.hub.tell(&nick::key(&nick), notice);
            info!(%nick, "muted (by another node)");
            self.events.emit(|| Event::Mute {
                nick,
                reason: rule.reason.clone(),
                expires: rule.expires,
                by: rule.set_by,
            });
        }
        for rule in new(&before.bans, &now.bans) {
            let target = rule.target.to_string();
            info!(%target, "unbanned (by another node)");
            self.events.emit(|| Event::Unban {
                target,
                by: rule.set_by,
            });
        }
        for rule in new(&before.mutes, &now.mutes) {
            let nick = rule.target.to_string();
            let line = self
                .hub
                .format()
                .system(format_args!("you are no longer muted"));
            self.hub.tell(&nick::key(&nick), line);
            self.events.emit(|| Event::Unmute {
                nick,
                by: rule.set_by,
            });
        }
    }

    /// Lifts the ban on `target`.
    pub fn unban(&self, target: &str, uid: u32) -> Result<UnbanReply, Failure> {
        let target: Target = target.parse().map_err(|e| Failure::new("bad_target", e))?;
        let removed = self.save(|rules| moderation::remove(&mut rules.bans, &target))?;
        let Some(rule) = removed else {
            return Err(Failure::new("not_found", format!("no ban on {target}")));
        };
        let target = rule.target.to_string();
        info!(%target, "unbanned");
        self.events.emit(|| Event::Unban {
            target: target.clone(),
            by: uid,
        });
        Ok(UnbanReply { target })
    }

    /// Mutes the nickname `nick` for `duration` (None: until lifted); if its user is
    /// online they are told at once.
    pub fn mute(
        &self,
        nick: &str,
        duration: Option<Duration>,
        reason: Option<String>,
        uid: u32,
    ) -> Result<MuteReply, Failure> {
        let target = match nick.parse() {
            Ok(target @ Target::Nick { .. }) => target,
            _ => {
                let message = format!("not a valid nickname: {nick}");
                return Err(Failure::new("bad_target", message));
            }
        };
        let rule = new_rule(target, duration, reason, uid)?;
        self.save(|rules| {
            moderation::set(&mut rules.mutes, rule.clone());
            Some(())
        })?;
        let nick = rule.target.to_string();
        let notice = Formatter::error(format_args!("{}", rule.muted_notice()));
        let online = self.hub.tell(&nick::key(&nick), notice);
        info!(
            %nick,
            reason = rule.reason.as_deref().unwrap_or(""),
            expires = ?rule.expires,
            "muted"
        );
        self.events.emit(|| Event::Mute {
            nick: nick.clone(),
            reason: rule.reason.clone(),
            expires: rule.expires,
            by: uid,
        });
        Ok(MuteReply {
            nick,
            expires: rule.expires,
            online,
        })
    }

    /// Lifts the mute on `nick`; its user, if online, is told.
    pub fn unmute(&self, nick: &str, uid: u32) -> Result<UnmuteReply, Failure> {
        let target = Target::nick(nick.to_owned());
        let removed = self.save(|rules| moderation::remove(&mut rules.mutes, &target))?;
        let Some(rule) = removed else {
            return Err(Failure::new("not_found", format!("no mute on {nick}")));
        };
        let nick = rule.target.to_string();
        let line = self
            .hub
            .format()
            .system(format_args!("you are no longer muted"));
        self.hub.tell(&nick::key(&nick), line);
        info!(%nick, "unmuted");
        self.events.emit(|| Event::Unmute {
            nick: nick.clone(),
            by: uid,
        });
        Ok(UnmuteReply { nick })
    }

    /// Every ban and mute in force.
    pub fn bans(&self) -> BansReply {
        let now = Utc::now();
        let rules = self.moderation.rules();
        let active = |list: &[Rule]| list.iter().filter(|r| r.active(now)).cloned().collect();
        BansReply {
            bans: active(&rules.bans),
            mutes: active(&rules.mutes),
        }
    }

    /// Applies `change` to the rules and writes them; a failed write is an error for the
    /// operator and changes nothing.
    fn save<T>(
        &self,
        change: impl Fn(&mut moderation::Rules) -> Option<T>,
    ) -> Result<Option<T>, Failure> {
        self.moderation.update(change).map_err(|e| {
            let path = self.moderation.path().display();
            error!(error = %e, path = %path, "cannot save bans and mutes");
            Failure::new(
                "state_error",
                format!("cannot save {path}: {e}; nothing changed"),
            )
        })
    }
}

/// A rule on `target` starting now.
fn new_rule(
    target: Target,
    duration: Option<Duration>,
    reason: Option<String>,
    uid: u32,
) -> Result<Rule, Failure> {
    let now = Utc::now();
    let expires = match duration {
        None => None,
        Some(d) if d.is_zero() => {
            return Err(Failure::new(
                "bad_request",
                "a duration must be more than 0",
            ));
        }
        Some(d) if d > moderation::MAX_DURATION => {
            return Err(Failure::new(
                "bad_request",
                "duration too long: at most 10 years",
            ));
        }
        Some(d) => {
            // Whole seconds, as the users and `bans` show them, and never short of `d`.
            let end = chrono::TimeDelta::from_std(d.saturating_add(Duration::from_secs(1)))
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .map(|end| end.trunc_subsecs(0));
            Some(end.ok_or_else(|| Failure::new("bad_request", "duration too long"))?)
        }
    };
    let reason = reason
        .map(|r| sanitize::clean(r.as_bytes()))
        .filter(|r| !r.is_empty());
    Ok(Rule {
        target,
        reason,
        set_by: uid,
        set_at: now.trunc_subsecs(0),
        expires,
    })
}

/// Takes ended bans and mutes out of the file every few seconds until shutdown.
pub async fn expire_rules(daemon: Arc<Daemon>) {
    // The file could not be written at the last try: said once, not every sweep.
    let mut failing = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(EXPIRY_SWEEP) => {}
            () = daemon.shutdown_requested() => return,
        }
        let now = Utc::now();
        let rules = daemon.moderation.rules();
        let ended = |r: &Rule| !r.active(now);
        if !rules.bans.iter().any(ended) && !rules.mutes.iter().any(ended) {
            continue;
        }
        let purged = daemon.moderation.update(|rules| Some(rules.purge(now)));
        let (bans, mutes) = match purged {
            Ok(Some(ended)) => ended,
            Ok(None) => continue,
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    let path = daemon.moderation.path().display();
                    error!(error = %e, path = %path, "cannot save bans and mutes; ended ones stay in the file (not in force) until it can");
                }
                continue;
            }
        };
        if std::mem::take(&mut failing) {
            info!("bans and mutes saved again");
        }
        for (kind, list) in [("ban", bans), ("mute", mutes)] {
            for rule in list {
                let target = rule.target.to_string();
                info!(kind, %target, "expired");
                daemon.events.emit(|| Event::Expired {
                    kind: kind.to_owned(),
                    target,
                });
            }
        }
    }
}
