//! What the whole running server shares: the room, the counters, the configuration's
//! source, and the one shutdown switch that signals, natterctl and tests all use.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::cause::Refused;
use crate::config::{self, Config, RESTART_KEYS};
use crate::events::{Event, Events};
use crate::format::Formatter;
use crate::hub::{Hub, RoomSettings};
use crate::limits::Limiter;
use crate::log_gate::LogGate;
use crate::logging::Logs;
use crate::moderation::Moderation;
use crate::nick;
use crate::pace::Pace;
use crate::proxy::Trusted;
use crate::stats::{Stats, get};
use crate::systemd;

mod moderate;
pub mod outcome;

pub use outcome::{Failure, ReloadReply, StatsReply};

pub use moderate::expire_rules;

/// The running server's shared state.
#[derive(Debug)]
pub struct Daemon {
    /// Who is online.
    pub hub: Hub,
    /// The configuration in force; a reload swaps it.
    config: RwLock<Arc<Config>>,
    /// The keys of `[chat] reserved_nicks` in force ([`crate::nick::key`]).
    reserved: RwLock<Arc<HashSet<String>>>,
    /// `[server] proxy_protocol` in force.
    proxies: RwLock<Arc<Trusted>>,
    /// The TLS certificate in force (`[tls]`); a reload swaps in a renewed one.
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
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
    /// The bound on log events clients cause.
    pub log_gate: LogGate,
    /// New connections per address (`[limits] connects_per_minute_per_ip`).
    pub connect_pace: Pace,
    /// `/report`s per address, so reconnecting does not reset the pace.
    pub report_pace: Pace,
    /// Join and leave announcements per address, so churn cannot flood the room.
    pub announce_pace: Pace,
    /// This node's part in a cluster, once started (`[cluster]`).
    pub cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    /// Places for refused connections being told why ([`crate::server::MAX_REFUSING`]).
    pub refusing: Arc<Semaphore>,
    /// Places for connections whose PROXY header is awaited
    /// ([`crate::server::MAX_PROXY_HEADERS`]).
    pub proxying: Arc<Semaphore>,
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
        let events = Events::default();
        Daemon {
            moderation,
            hub: Hub::new(RoomSettings::from(&config), events.clone()),
            events,
            log_gate: LogGate::default(),
            connect_pace: Pace::default(),
            report_pace: Pace::default(),
            announce_pace: Pace::default(),
            cluster: std::sync::OnceLock::new(),
            refusing: Arc::new(Semaphore::new(crate::server::MAX_REFUSING)),
            proxying: Arc::new(Semaphore::new(crate::server::MAX_PROXY_HEADERS)),
            reserved: RwLock::new(Arc::new(nick::keys(&config.chat.reserved_nicks))),
            proxies: RwLock::new(Arc::new(trusted(&config))),
            tls: RwLock::new(tls_config(&config)),
            config: RwLock::new(Arc::new(config)),
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
        let running = self.config();
        let (restart_needed, changed) = running
            .changed_keys(&new)
            .into_iter()
            .partition(|key| RESTART_KEYS.contains(&key.as_str()));
        if new.log.level != running.log.level {
            self.logs.set_level(&new.log.level);
        }
        self.set_config(new.keeping_restart_keys(&running));
        Ok(ReloadReply {
            changed,
            restart_needed,
        })
    }

    /// Records a refusal: counted, logged (within the log's bound, in the caller's span) and
    /// sent to watchers, with the cause spelled one way everywhere.
    pub fn refused(&self, cause: Refused, peer: SocketAddr) {
        self.stats.refuse(cause);
        if self.log_gate.allow_shared() {
            info!(cause = cause.name(), "connection refused");
        }
        self.events.emit(|| Event::Refused {
            peer: peer.to_string(),
            cause: cause.name().into(),
        });
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Puts `config` in force for everything from now on, the room's settings included.
    fn set_config(&self, config: Config) {
        self.hub.set_settings(RoomSettings::from(&config));
        let reserved = Arc::new(nick::keys(&config.chat.reserved_nicks));
        *self
            .reserved
            .write()
            .unwrap_or_else(PoisonError::into_inner) = reserved;
        *self.proxies.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(trusted(&config));
        *self.tls.write().unwrap_or_else(PoisonError::into_inner) = tls_config(&config);
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }

    /// The TLS server configuration for new handshakes, if `[tls]` is set.
    pub fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether connections from `ip` start with a PROXY header (`[server] proxy_protocol`).
    pub fn expects_proxy_header(&self, ip: std::net::IpAddr) -> bool {
        let proxies = self.proxies.read().unwrap_or_else(PoisonError::into_inner);
        proxies.trusts(ip)
    }

    /// Whether the nickname whose [`nick::key`] is `key` is reserved.
    pub fn is_reserved(&self, key: &str) -> bool {
        let reserved = self.reserved.read().unwrap_or_else(PoisonError::into_inner);
        reserved.contains(key)
    }

    /// How lines are formatted now.
    pub fn format(&self) -> Formatter {
        self.hub.format()
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
        let (online, peak, rooms) = self.hub.counts();
        let s = &self.stats;
        let rules = self.moderation.rules();
        StatsReply {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.started.elapsed().as_secs(),
            listen: self.listen.iter().map(ToString::to_string).collect(),
            users_online: online as u64,
            rooms: rooms as u64,
            deliveries: get(&s.deliveries),
            cluster: self.cluster.get().map(|c| outcome::ClusterStats {
                node: c.node().to_owned(),
                connected: c.is_connected(),
                server: c.server(),
                nodes: c.nodes(),
                dropped: self.hub.cluster_link().map_or(0, |l| l.dropped()),
                bad_messages: get(&c.bad_messages),
                missed: get(&c.missed),
            }),
            peak_users: peak as u64,
            connections: self.limiter.open() as u64,
            accepted: get(&s.accepted),
            lines_relayed: get(&s.lines_relayed),
            bytes_in: get(&s.bytes_in),
            bytes_out: get(&s.bytes_out),
            kicks: get(&s.kicks),
            refused: s.refused().map(|(k, v)| (k.to_owned(), v)).collect(),
            dropped: s.dropped().map(|(k, v)| (k.to_owned(), v)).collect(),
            skipped_messages: get(&s.skipped_messages),
            log_lines_dropped: self.logs.dropped(),
            log_events_suppressed: self.log_gate.suppressed(),
            muted_messages: get(&s.muted_messages),
            reports: get(&s.reports),
            bans: rules.bans.len() as u64,
            mutes: rules.mutes.len() as u64,
        }
    }
}

/// `[server] proxy_protocol`, checked when the configuration was read.
fn trusted(config: &Config) -> Trusted {
    Trusted::parse(&config.server.proxy_protocol).unwrap_or_default()
}

/// `[tls]`'s certificate, loaded (the configuration check loaded it already).
fn tls_config(config: &Config) -> Option<Arc<rustls::ServerConfig>> {
    let (cert, key) = (config.tls.cert.as_ref()?, config.tls.key.as_ref()?);
    crate::tls::load(cert, key).ok()
}
