//! One client's task: greeting, nickname, then chat until they leave.
//!
//! The task owns its socket. One `select!` loop writes queued output, wakes on new output
//! and reads input; it reads only when all output so far has been written, so a client
//! that does not read cannot make the server buffer replies to what it sends.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::cause::{Dropped, Refused};
use crate::cluster::Claim;
use crate::codec::{Decoder, TELNET_HELLO};
use crate::config::Config;
use crate::daemon::Daemon;
use crate::events;
use crate::flood::Bucket;
use crate::format::{self, Formatter};
use crate::hub::ClientId;
use crate::limits::Permit;
use crate::log_gate::LogGate;
use crate::nick::HeldKeys;
use crate::outbox::Outbox;
use crate::proxy;
use crate::sanitize;
use crate::stats::{Meter, add, get};

mod conn;
mod input;
mod leave;
mod lines;
mod people;
mod rooms;

pub use conn::Transport;
use conn::{Conn, READ_CHUNK, WRITE_CHUNK};
use leave::{Leave, io_leave};

/// How long a leaving client gets to take its last lines.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// `/report`: this many at once from one address, then one per minute.
const REPORT_BURST: u32 = 3;
const REPORTS_PER_MINUTE: u32 = 1;
/// `/nick`: this many changes at once, then this many a minute.
const NICKS_PER_MINUTE: u32 = 3;
/// `/join` of a room that does not exist yet: this many at once, then this many a minute.
const ROOMS_PER_MINUTE: u32 = 5;

/// Lines and telnet events acted on per turn of the session loop, and the time a turn may
/// take; a connection with more input waiting yields to the other tasks before it goes on.
/// So however fast input comes, and however dear each line (a nickname attempt costs
/// microseconds), a session holds its worker for about a tenth of a millisecond at a time,
/// and the runtime's I/O driver, polled every few dozen task turns, is never starved.
const EVENTS_PER_TURN: usize = 16;
const TURN_TIME: Duration = Duration::from_micros(100);
/// What one telnet command costs in flood control, in lines: a client's negotiation at
/// connect costs less than one line, a stream of commands is paced like lines.
const TELNET_COMMAND_COST: f64 = 0.1;
/// Answers to telnet's "are you there" come at most this often.
const AYT_INTERVAL: Duration = Duration::from_secs(1);

/// Serves one accepted connection until the client leaves. `permit` holds its place in
/// the connection limits until then.
pub async fn run<T: Transport>(stream: T, peer: SocketAddr, daemon: Arc<Daemon>, permit: Permit) {
    let _permit = permit;
    let started = Instant::now();
    // Settings read at connect hold for the whole connection; a reload affects new ones.
    let config = daemon.config();
    let outbox = Arc::new(Outbox::new(config.limits.send_queue_bytes));
    let meter = Arc::new(Meter::default());
    let id = daemon.hub.connect(peer, outbox.clone(), meter.clone());
    // Leaves the room even if this task panics, so no ghost stays behind.
    let registration = Registration {
        daemon: daemon.clone(),
        id,
    };
    let mut session = Session::new(id, daemon, config, outbox, meter, peer, started);
    // The accept loop checked the address already; a ban made since, before this
    // connection was in the hub for the ban to find, is caught here.
    match session
        .daemon
        .moderation
        .rules()
        .ban_on_addr(peer.ip(), chrono::Utc::now())
    {
        Some(ban) => {
            session.error(format_args!("{}", ban.banned_text()));
            session.leave(Leave::Banned);
        }
        None => session.greet(),
    }
    let leave = session.serve(stream).await;
    drop(registration);
    session.record_leave(&leave);
}

/// What the session loop does after a turn.
enum Turn {
    /// The session ends.
    End(Leave),
    /// Turn again at once: more output may be queued.
    Again,
    /// Turn again after the other tasks: input waits beyond this turn's quota.
    Yield,
    /// Wait for the socket, the outbox or a timer; read only if `reading`.
    Wait { reading: bool },
}

/// A connection's place in the hub, given up when dropped.
struct Registration {
    daemon: Arc<Daemon>,
    id: ClientId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.daemon.hub.leave(self.id);
    }
}

struct Session {
    id: ClientId,
    daemon: Arc<Daemon>,
    config: Arc<Config>,
    outbox: Arc<Outbox>,
    meter: Arc<Meter>,
    decoder: Decoder,
    flood: Bucket,
    /// Told to slow down in this flood episode already.
    flood_warned: bool,
    /// A line waiting for flood control to let it through.
    held: Option<String>,
    started: Instant,
    last_line: Instant,
    /// Where the client connects from.
    peer: SocketAddr,
    /// Set once logged in.
    nick: Option<Arc<str>>,
    /// The [`crate::nick::key`]s of the nicknames held this connection, so a mute on a name
    /// given up still holds.
    keys: HeldKeys,
    /// A nickname waiting for the cluster to say whether this node may give it out.
    pending: Option<Box<Pending>>,
    /// Paces for `/nick` and room creation, made at first use: most connections never
    /// need them, and every connection's future carries this field.
    paces: Option<Box<Paces>>,
    /// This connection's share of the log (see [`crate::log_gate`]).
    log_bucket: Bucket,
    /// Set when the client is done; what is queued is still written.
    leaving: Option<Leave>,
    last_ayt: Option<Instant>,
}

impl Session {
    /// The session of connection `id` from `peer`, accepted at `started`.
    fn new(
        id: ClientId,
        daemon: Arc<Daemon>,
        config: Arc<Config>,
        outbox: Arc<Outbox>,
        meter: Arc<Meter>,
        peer: SocketAddr,
        started: Instant,
    ) -> Session {
        let limits = &config.limits;
        Session {
            id,
            decoder: Decoder::new(config.chat.max_line_bytes, config.server.telnet_binary),
            flood: Bucket::new(limits.flood_rate, limits.flood_burst, started),
            flood_warned: false,
            held: None,
            started,
            last_line: started,
            daemon,
            config,
            outbox,
            meter,
            peer,
            nick: None,
            keys: HeldKeys::default(),
            paces: None,
            pending: None,
            log_bucket: LogGate::connection(),
            leaving: None,
            last_ayt: None,
        }
    }

    /// Logs (within the log's bound) and tells watchers how the session ended.
    fn record_leave(&mut self, leave: &Leave) {
        let logged = self.may_log();
        let duration = format!("{:.3}s", self.started.elapsed().as_secs_f64());
        let nick = self.nick.as_deref().unwrap_or("-");
        let reason = leave.as_str();
        if self.nick.is_some() {
            self.daemon.events.emit(|| events::Event::Leave {
                nick: nick.to_owned(),
                peer: self.peer.to_string(),
                reason: reason.to_owned(),
            });
        }
        if !logged {
            return;
        }
        match leave {
            Leave::Error(e) => info!(nick, reason, error = %e, %duration, "left"),
            Leave::Quit | Leave::Closed | Leave::Shutdown => info!(nick, reason, %duration, "left"),
            _ => warn!(nick, reason, %duration, "left"),
        }
    }

    fn greet(&mut self) {
        let server = &self.config.server;
        if server.telnet_binary {
            self.send(Bytes::from_static(TELNET_HELLO));
        }
        let banner = format::line(format_args!(
            "Welcome to {} (natter {})",
            server.name,
            env!("CARGO_PKG_VERSION")
        ));
        self.send(banner);
        let motd = server.motd.as_deref().unwrap_or("");
        for text in motd.lines().filter(|l| !l.trim().is_empty()) {
            self.send(format::line(format_args!(
                "{}",
                sanitize::clean(text.as_bytes())
            )));
        }
        self.prompt();
    }

    fn prompt(&self) {
        let max = self.config.chat.max_nick_len;
        self.send(format::line(format_args!(
            "Choose a nickname (up to {max} characters):"
        )));
    }

    fn send(&self, line: Bytes) {
        self.outbox.push(line);
    }

    fn error(&self, text: std::fmt::Arguments<'_>) {
        self.send(Formatter::error(text));
    }

    async fn serve<T: Transport>(&mut self, io: T) -> Leave {
        let mut conn = Conn::new(io);
        let leave = self.pump(&mut conn).await;
        if let Leave::Dropped(cause) = leave {
            self.daemon.stats.drop_for(cause);
        }
        if leave.closes_cleanly() {
            conn.linger().await;
        }
        leave
    }

    /// Moves bytes both ways until the client is gone, or done and all its output is out.
    async fn pump<T: Transport>(&mut self, conn: &mut Conn<T>) -> Leave {
        // Read but not yet decoded: only what flood control holds back or a turn's quota left,
        // so an idle connection keeps no read buffer (reads go through a buffer on the stack).
        let mut input: Vec<u8> = Vec::new();
        let mut flush_deadline = None;
        loop {
            if let Some(pending) = self.pending.take() {
                // Boxed: only logins in a cluster wait here, and every session carries its loop.
                Box::pin(self.resolve(*pending)).await;
            }
            let now = Instant::now();
            match self.turn(conn, &mut input, now) {
                Turn::End(leave) => return leave,
                // This turn awaited nothing, so it counts against tokio's cooperative
                // budget: however fast others fill the outbox, the task yields after a
                // bounded number of turns (the other turns await readiness, which counts).
                Turn::Again => tokio::task::coop::consume_budget().await,
                // The quota stopped processing with input left: let other tasks run first.
                Turn::Yield => tokio::task::yield_now().await,
                // The cluster's answer is awaited at the top of the loop.
                Turn::Wait { .. } if self.pending.is_some() => {}
                Turn::Wait { reading } => {
                    if self.leaving.is_some() && flush_deadline.is_none() {
                        flush_deadline = Some(now + FLUSH_TIMEOUT);
                    }
                    let limit = self.limit(self.config.limits.write_timeout);
                    let write_deadline = conn.write_deadline(limit);
                    let deadline = [flush_deadline, write_deadline, self.timer(now)]
                        .into_iter()
                        .flatten()
                        .min();
                    tokio::select! {
                        res = conn.write_some(), if !conn.idle() => match res {
                            Ok(n) => {
                                conn.advance(n);
                                self.count_out(n);
                            }
                            Err(e) => return self.leaving.take().unwrap_or(io_leave(e)),
                        },
                        () = self.outbox.changed() => {}
                        res = conn.readable(), if reading => {
                            if let Err(e) = res.and_then(|()| self.read(conn, &mut input)) {
                                return io_leave(e);
                            }
                        }
                        () = sleep_until(deadline) => {
                            let now = Instant::now();
                            if write_deadline.is_some_and(|d| now >= d) {
                                return Leave::Dropped(Dropped::WriteTimeout);
                            }
                            if flush_deadline.is_some_and(|d| now >= d) {
                                return self.leaving.take().unwrap_or(Leave::Closed);
                            }
                            self.on_timer(now);
                        }
                    }
                }
            }
        }
    }

    /// What a turn of the loop does before it waits: act on input left over, take output
    /// from the outbox and write what the client takes at once; then say what comes next.
    fn turn<T: Transport>(
        &mut self,
        conn: &mut Conn<T>,
        input: &mut Vec<u8>,
        now: Instant,
    ) -> Turn {
        // A held line (flood control, or a turn's quota) waits here even when no input is
        // left behind it.
        if !input.is_empty() || self.held.is_some() {
            let used = self.process(input, now);
            input.drain(..used);
            if input.is_empty() {
                *input = Vec::new();
            }
        }
        let refilled = conn.idle();
        if let Some(leave) = self.take_output(conn, now) {
            return Turn::End(leave);
        }
        // A client that keeps up takes it all at once: no need to wait for writability or
        // arm the write timeout.
        if refilled && !conn.is_empty() {
            match conn.try_flush() {
                Ok(n) => self.count_out(n),
                Err(e) => return Turn::End(self.leaving.take().unwrap_or(io_leave(e))),
            }
            if conn.idle() {
                // All out; see whether more was queued meanwhile.
                return Turn::Again;
            }
        }
        conn.release();
        let idle = conn.idle();
        let held_back =
            self.flood.debt(now).is_some() || self.held.is_some() && self.flood.wait(now).is_some();
        let more = !input.is_empty() || self.held.is_some();
        if idle && self.leaving.is_none() && more && !held_back {
            return Turn::Yield;
        }
        Turn::Wait {
            reading: idle && self.leaving.is_none() && !more && !held_back,
        }
    }

    /// Reads what input is there and acts on it; what a turn's quota leaves goes to `input`.
    fn read<T: Transport>(&mut self, conn: &Conn<T>, input: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = [0; READ_CHUNK];
        match conn.try_read(&mut buf) {
            Ok(0) => self.end_of_input(),
            Ok(n) => {
                let first = self.nick.is_none() && get(&self.meter.bytes_in) == 0;
                self.count(&self.meter.bytes_in, &self.daemon.stats.bytes_in, n);
                if first && proxy::looks_like_header(&buf[..n]) {
                    // Only `[server] proxy_protocol` addresses may say who the client is.
                    self.daemon.refused(Refused::UntrustedProxy, self.peer);
                    self.error(format_args!("PROXY header not accepted from this address"));
                    self.leave(Leave::Refused(Refused::UntrustedProxy));
                    return Ok(());
                }
                let used = self.process(&buf[..n], Instant::now());
                input.extend_from_slice(&buf[used..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// One look at the outbox per wake-up: a client cut off ends now, a closing one is
    /// leaving, and once all earlier output is written the next lines are taken to write.
    /// Returns how the session ends if it ends here: cut off, or leaving with nothing left.
    fn take_output<T: Transport>(&mut self, conn: &mut Conn<T>, now: Instant) -> Option<Leave> {
        let idle = conn.idle();
        let wake = self
            .outbox
            .wake(idle.then(|| conn.refill(now)), WRITE_CHUNK);
        if wake.aborted {
            return Some(Leave::Dropped(Dropped::SendQueueFull));
        }
        if self.leaving.is_none()
            && let Some(close) = wake.closing
        {
            self.leaving = Some(close.into());
        }
        if let Some(skipped) = wake.skipped {
            if self.may_log() {
                warn!(skipped, "group messages skipped for a slow reader");
            }
            self.daemon.events.emit(|| events::Event::SlowReader {
                nick: self.nick.as_deref().unwrap_or("-").to_owned(),
                skipped,
            });
        }
        if idle && conn.is_empty() {
            return self.leaving.take();
        }
        None
    }

    fn count_out(&self, n: usize) {
        self.count(&self.meter.bytes_out, &self.daemon.stats.bytes_out, n);
    }

    /// Whether a log event this client caused may be written (see [`crate::log_gate`]).
    fn may_log(&mut self) -> bool {
        self.daemon.log_gate.allow(&mut self.log_bucket)
    }

    /// A limit in seconds from the config as a duration; 0 means none.
    fn limit(&self, secs: u64) -> Option<Duration> {
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// When the session next has something to do by itself: let a held line through,
    /// or end a login or idle timeout.
    fn timer(&self, now: Instant) -> Option<Instant> {
        if self.leaving.is_some() {
            None
        } else if self.held.is_some() {
            Some(now + self.flood.wait(now).unwrap_or_default())
        } else if let Some(debt) = self.flood.debt(now) {
            Some(now + debt)
        } else {
            self.inactivity_deadline()
        }
    }

    /// When the login timeout (before a nickname) or the idle timeout (after) runs out.
    fn inactivity_deadline(&self) -> Option<Instant> {
        let limits = &self.config.limits;
        let (secs, since) = match self.nick {
            None => (limits.login_timeout, self.started),
            Some(_) => (limits.idle_timeout, self.last_line),
        };
        self.limit(secs).map(|t| since + t)
    }

    fn on_timer(&mut self, now: Instant) {
        let expired = self.inactivity_deadline().is_some_and(|d| now >= d);
        if self.leaving.is_some() || self.held.is_some() || !expired {
            return;
        }
        let limits = &self.config.limits;
        if self.nick.is_none() {
            let secs = limits.login_timeout;
            self.error(format_args!("login timeout: no nickname after {secs} s"));
            self.leave(Leave::Dropped(Dropped::LoginTimeout));
        } else {
            let secs = limits.idle_timeout;
            self.error(format_args!("idle timeout: nothing sent for {secs} s"));
            self.leave(Leave::Dropped(Dropped::IdleTimeout));
        }
    }

    fn count(&self, mine: &AtomicU64, total: &AtomicU64, n: usize) {
        add(mine, n as u64);
        add(total, n as u64);
    }
}

/// Something the session waits on the cluster for before it reads on.
enum Pending {
    /// A login under this nickname.
    Login(Box<str>),
    /// A change to this nickname.
    Rename(Box<str>),
}

impl Session {
    /// Asks the cluster for what is pending and acts on the answer.
    async fn resolve(&mut self, pending: Pending) {
        let Some(cluster) = self.daemon.cluster.get().cloned() else {
            return;
        };
        match pending {
            Pending::Login(nick) => {
                let key = crate::nick::key(&nick);
                match cluster.claim(&key).await {
                    Claim::Won => self.finish_login(&nick, &key),
                    Claim::Taken => self.refuse_nick(&nick, &crate::nick::NickError::Taken),
                    Claim::Unavailable => {
                        self.reconnecting();
                        self.prompt();
                    }
                }
            }
            Pending::Rename(nick) => {
                let key = crate::nick::key(&nick);
                match cluster.claim(&key).await {
                    Claim::Won => self.finish_rename(&nick, &key),
                    Claim::Taken => {
                        let taken = crate::nick::NickError::Taken;
                        self.error(format_args!("{taken}: {nick}"));
                    }
                    Claim::Unavailable => self.reconnecting(),
                }
            }
        }
    }

    fn reconnecting(&self) {
        self.error(format_args!(
            "the server is reconnecting; try again in a moment"
        ));
    }
}

/// How fast one connection may change nickname and make rooms.
struct Paces {
    /// `/nick` changes ([`NICKS_PER_MINUTE`]).
    nick: Bucket,
    /// Rooms made with `/join` ([`ROOMS_PER_MINUTE`]).
    room: Bucket,
}

impl Session {
    fn paces(&mut self) -> &mut Paces {
        let per_minute = |n: u32| Bucket::new(f64::from(n) / 60.0, n, self.started);
        self.paces.get_or_insert_with(|| {
            Box::new(Paces {
                nick: per_minute(NICKS_PER_MINUTE),
                room: per_minute(ROOMS_PER_MINUTE),
            })
        })
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Logs;
    use crate::moderation::Moderation;

    #[tokio::test]
    async fn a_panicking_session_poisons_nothing_and_leaves_no_ghost() {
        let mut config = Config::default();
        config.chat.timestamps = false;
        let daemon = Arc::new(Daemon::new(
            config,
            None,
            vec![],
            vec![],
            Arc::new(Logs::default()),
            Moderation::unsaved(),
        ));
        let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
        let watcher = Arc::new(Outbox::new(1 << 16));
        let watcher_id = daemon.hub.connect(peer, watcher.clone(), Arc::default());
        daemon.hub.login(watcher_id, "watcher", || true).unwrap();

        let d = daemon.clone();
        let doomed = tokio::spawn(async move {
            let outbox = Arc::new(Outbox::new(1 << 16));
            let id = d.hub.connect(peer, outbox, Arc::default());
            let _registration = Registration {
                daemon: d.clone(),
                id,
            };
            d.hub.login(id, "doomed", || true).unwrap();
            d.hub.panic_holding_lock();
        });
        assert!(doomed.await.unwrap_err().is_panic());

        // The room still works, and the panicked user is gone with a proper goodbye.
        let mut seen = Vec::new();
        watcher.drain_into(&mut seen, usize::MAX);
        let seen = String::from_utf8(seen).unwrap();
        assert!(
            seen.ends_with("* doomed joined\r\n* doomed left\r\n"),
            "{seen}"
        );
        let names: Vec<String> = daemon
            .hub
            .members(watcher_id)
            .unwrap()
            .1
            .iter()
            .map(|m| m.nick.to_string())
            .collect();
        assert_eq!(names, ["watcher"]);
        let other = daemon
            .hub
            .connect(peer, Arc::new(Outbox::new(1 << 16)), Arc::default());
        assert!(
            daemon.hub.login(other, "doomed", || true).is_ok(),
            "nickname freed"
        );
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::moderation::Moderation;

    /// Every connection holds one of these futures; keep it small.
    #[test]
    fn a_session_future_stays_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let logs = Default::default();
            let daemon = Arc::new(Daemon::new(
                Config::default(),
                None,
                vec![],
                vec![],
                logs,
                Moderation::unsaved(),
            ));
            let permit = daemon.limiter.admit(addr.ip(), 0, 0).unwrap();
            let future = super::run(stream, addr, daemon, permit);
            assert!(
                std::mem::size_of_val(&future) <= 2048,
                "{}",
                std::mem::size_of_val(&future)
            );
        });
    }
}
