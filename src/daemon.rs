//! What the whole running server shares: the room, the counters, the configuration's
//! source, and the one shutdown switch that signals, natterctl and tests all use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admin::proto::{
    BanReply, BansReply, Failure, MuteReply, ReloadReply, StatsReply, UnbanReply, UnmuteReply,
};
use crate::config::{self, Config, RESTART_KEYS};
use crate::events::{Event, Events};
use crate::format::Formatter;
use crate::hub::Hub;
use crate::limits::Limiter;
use crate::logging::Logs;
use crate::moderation::{self, Moderation, Rule, Target};
use crate::stats::{Stats, get};
use crate::systemd;
use crate::{nick, sanitize};

/// The running server's shared state.
#[derive(Debug)]
pub struct Daemon {
    /// Who is online.
    pub hub: Hub,
    /// Totals since start.
    pub stats: Stats,
    /// Every session task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Open connections, in all and per address.
    pub limiter: Arc<Limiter>,
    /// Where events go.
    pub logs: Arc<Logs>,
    /// Bans and mutes.
    pub moderation: Moderation,
    /// Live events for `natterctl watch`.
    pub events: Events,
    started: Instant,
    listen: Vec<SocketAddr>,
    source: Option<PathBuf>,
    listen_override: Vec<SocketAddr>,
    shutdown: CancellationToken,
    shutdown_message: Mutex<Option<String>>,
}

impl Daemon {
    /// A server running `config`, read from `source` (None: built-in defaults), with
    /// `listen_override` from the command line, accepting on `listen`, logging to `logs`,
    /// enforcing `moderation`.
    pub fn new(
        config: Config,
        source: Option<PathBuf>,
        listen_override: Vec<SocketAddr>,
        listen: Vec<SocketAddr>,
        logs: Arc<Logs>,
        moderation: Moderation,
    ) -> Daemon {
        Daemon {
            moderation,
            events: Events::default(),
            hub: Hub::new(config),
            stats: Stats::default(),
            tracker: TaskTracker::new(),
            limiter: Arc::default(),
            logs,
            started: Instant::now(),
            listen,
            source,
            listen_override,
            shutdown: CancellationToken::new(),
            shutdown_message: Mutex::new(None),
        }
    }

    /// Re-reads the configuration file and puts what may change live into force. The one
    /// path for SIGHUP and `natterctl reload`; logs its outcome.
    pub fn reload(&self) -> Result<ReloadReply, Failure> {
        systemd::reloading();
        let result = self.try_reload();
        systemd::ready();
        match &result {
            Ok(reply) => {
                info!(
                    changed = ?reply.changed,
                    restart_needed = ?reply.restart_needed,
                    "configuration reloaded"
                );
                self.events.emit(|| Event::Reload {
                    changed: reply.changed.clone(),
                    restart_needed: reply.restart_needed.clone(),
                });
            }
            Err(failure) => {
                warn!(error = %failure.message, details = ?failure.details, "reload rejected");
                self.events.emit(|| Event::ReloadFailed {
                    message: failure.message.clone(),
                });
            }
        }
        result
    }

    fn try_reload(&self) -> Result<ReloadReply, Failure> {
        let Some(path) = &self.source else {
            return Err(Failure::new(
                "no_config_file",
                "natterd runs on built-in defaults; start it with --config PATH to reload",
            ));
        };
        let mut new = config::load(path).map_err(|errors| Failure {
            code: "invalid_config".into(),
            message: format!(
                "{}: {} error(s); the running configuration stays",
                path.display(),
                errors.len()
            ),
            details: errors.iter().map(ToString::to_string).collect(),
        })?;
        if !self.listen_override.is_empty() {
            new.server.listen.clone_from(&self.listen_override);
        }
        let running = self.hub.config();
        let (restart_needed, changed) = running
            .changed_keys(&new)
            .into_iter()
            .partition(|key| RESTART_KEYS.contains(&key.as_str()));
        if new.log.level != running.log.level {
            self.logs.set_level(&new.log.level);
        }
        self.hub.set_config(new.keeping_restart_keys(&running));
        Ok(ReloadReply {
            changed,
            restart_needed,
        })
    }

    /// Starts a graceful shutdown, with `message` for the users. Returns false if one was
    /// already under way.
    pub fn request_shutdown(&self, message: Option<String>) -> bool {
        if self.shutdown.is_cancelled() {
            return false;
        }
        systemd::stopping();
        info!(
            notice = message.as_deref().unwrap_or(""),
            "shutdown started"
        );
        *self
            .shutdown_message
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = message;
        self.shutdown.cancel();
        self.events.emit(|| Event::Shutdown);
        true
    }

    /// Resolves once a shutdown was requested.
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await;
    }

    /// The operator's words for the shutdown notice, if any.
    pub fn shutdown_message(&self) -> Option<String> {
        self.shutdown_message
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `stats` report.
    pub fn report(&self) -> StatsReply {
        let (online, peak) = self.hub.counts();
        let s = &self.stats;
        let rules = self.moderation.rules();
        StatsReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            listen: self.listen.iter().map(ToString::to_string).collect(),
            users_online: online as u64,
            peak_users: peak as u64,
            connections: self.limiter.open() as u64,
            accepted: get(&s.accepted),
            lines_relayed: get(&s.lines_relayed),
            bytes_in: get(&s.bytes_in),
            bytes_out: get(&s.bytes_out),
            kicks: get(&s.kicks),
            refused: [
                ("server_full", &s.refused_server_full),
                ("too_many_from_address", &s.refused_per_address),
                ("banned", &s.refused_banned),
                ("banned_nick", &s.refused_banned_nick),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), get(v)))
            .collect(),
            dropped: [
                ("send_queue_full", &s.dropped_send_queue),
                ("write_timeout", &s.dropped_write_timeout),
                ("login_timeout", &s.dropped_login_timeout),
                ("idle_timeout", &s.dropped_idle_timeout),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), get(v)))
            .collect(),
            skipped_messages: get(&s.skipped_messages),
            log_lines_dropped: self.logs.dropped(),
            muted_messages: get(&s.muted_messages),
            reports: get(&s.reports),
            bans: rules.bans.len() as u64,
            mutes: rules.mutes.len() as u64,
        }
    }
}

/// How often ended bans and mutes are taken out of the file. They stop applying at their
/// end to the second regardless; this only tidies.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

impl Daemon {
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
        let notice = Formatter::error(format_args!("{}", rule.banned_text()));
        let key = match &rule.target {
            Target::Nick(nick) => Some(nick::key(nick)),
            Target::Net(_) => None,
        };
        let matches = |ip, nick: Option<&str>| match &key {
            Some(key) => nick == Some(key.as_str()),
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
            by: uid,
            kicked: kicked.clone(),
        });
        Ok(BanReply {
            target,
            expires: rule.expires,
            kicked,
        })
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
            Ok(Target::Nick(nick)) => Target::Nick(nick),
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
        let target = Target::Nick(nick.to_owned());
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
        change: impl FnOnce(&mut moderation::Rules) -> Option<T>,
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
        Some(d) => {
            // Whole seconds, as the users and `bans` show them, and never short of `d`.
            let end = chrono::TimeDelta::from_std(d + Duration::from_secs(1))
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
        let purged = daemon.save(|rules| Some(rules.purge(now)));
        let Ok(Some((bans, mutes))) = purged else {
            continue;
        };
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
