//! Listening sockets and the accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::cause::Refused;
use crate::daemon::Daemon;
use crate::format::Formatter;
use crate::limits::Permit;
use crate::proxy::{self, BadHeader};
use crate::session;
use crate::stats::add;

/// Pending connections the kernel may hold for us.
const BACKLOG: i32 = 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again; it
/// doubles while accept keeps failing, up to the maximum.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// TCP keepalive: probe after this much silence, then at this interval, this many times.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(120);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
const KEEPALIVE_RETRIES: u32 = 4;
/// Connections from trusted proxies whose header is awaited at once.
pub const MAX_PROXY_HEADERS: usize = 1024;
/// Refused clients being told why at once.
pub const MAX_REFUSING: usize = 256;
/// A refused client gets this long to take its one line.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for sessions to write their last lines. Each session gives up
/// on a stuck client sooner (its flush timeout), so this is only a backstop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// Binds one chat listener. IPv6 sockets are IPv6-only, so `0.0.0.0:p` and `[::]:p` can be
/// listed side by side.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Serves chat on `listeners` until a shutdown is requested, then drains: every client
/// gets the shutdown notice, and sessions get [`DRAIN_TIMEOUT`] to finish writing.
///
/// Connections on `tls` listeners start with a TLS handshake (see [`crate::tls`]).
pub async fn run(listeners: Vec<TcpListener>, tls: Vec<TcpListener>, daemon: Arc<Daemon>) {
    let mut accepting = Vec::new();
    let all = listeners.into_iter().map(|l| (l, false));
    for (listener, tls) in all.chain(tls.into_iter().map(|l| (l, true))) {
        match listener.local_addr() {
            Ok(addr) if tls => info!(%addr, tls, "listening"),
            Ok(addr) => info!(%addr, "listening"),
            Err(_) => {}
        }
        accepting.push(tokio::spawn(accept_loop(listener, daemon.clone(), tls)));
    }
    daemon.shutdown_requested().await;
    for task in accepting {
        task.abort();
    }
    let notice = match daemon.shutdown_message() {
        Some(text) => format!("server shutting down: {text}"),
        None => "server shutting down".to_owned(),
    };
    let line = daemon.hub.format().system(format_args!("{notice}"));
    daemon.hub.close_all(&line);
    daemon.tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, daemon.tracker.wait())
        .await
        .is_err()
    {
        warn!(
            left = daemon.tracker.len(),
            "drain timed out; closing the rest"
        );
    }
}

async fn accept_loop(listener: TcpListener, daemon: Arc<Daemon>, tls: bool) {
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF;
                if daemon.expects_proxy_header(peer.ip()) {
                    behind_proxy(stream, peer, &daemon, tls);
                } else {
                    admit(stream, peer, &daemon, tls);
                }
            }
            Err(e) => {
                // Out of file descriptors, or a connection reset before we took it: wait a
                // little longer each time and go on; never give up the listener.
                warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Reads the PROXY header a trusted proxy sends first, then admits the connection under the
/// client's address it gives. At most [`MAX_PROXY_HEADERS`] are awaited at once, each for
/// [`proxy::HEADER_TIMEOUT`]; a bad or late header is refused, logged and closed.
fn behind_proxy(mut stream: TcpStream, proxy: SocketAddr, daemon: &Arc<Daemon>, tls: bool) {
    let Ok(place) = daemon.proxying.clone().try_acquire_owned() else {
        add(&daemon.stats.accepted, 1);
        let span = info_span!("conn", peer = %proxy);
        span.in_scope(|| daemon.refused(Refused::BadProxyHeader, proxy));
        return;
    };
    let daemon = daemon.clone();
    tokio::spawn(async move {
        let header = proxy::read_header(&mut stream, proxy);
        let read = tokio::time::timeout(proxy::HEADER_TIMEOUT, header).await;
        drop(place);
        match read.unwrap_or(Err(BadHeader::Incomplete)) {
            Ok(client) => admit(stream, client, &daemon, tls),
            Err(why) => {
                add(&daemon.stats.accepted, 1);
                let span = info_span!("conn", peer = %proxy);
                let _enter = span.enter();
                if daemon.log_gate.allow_shared() {
                    warn!(%why, "PROXY header refused");
                }
                daemon.refused(Refused::BadProxyHeader, proxy);
            }
        }
    });
}

/// Starts a session for a new connection, or turns it away with one line.
fn admit(stream: TcpStream, peer: SocketAddr, daemon: &Arc<Daemon>, tls: bool) {
    add(&daemon.stats.accepted, 1);
    let span = info_span!("conn", %peer);
    let permit = match check(peer, daemon) {
        Ok(permit) => permit,
        Err((cause, notice)) => {
            span.in_scope(|| daemon.refused(cause, peer));
            refuse(stream, notice, daemon);
            return;
        }
    };
    // Lines are gathered into one write per wake-up already; don't delay them.
    let _ = stream.set_nodelay(true);
    // Find dead peers (a laptop closed mid-chat) so their nicknames are freed.
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    if daemon.log_gate.allow_shared() {
        span.in_scope(|| info!("connection accepted"));
    }
    if tls {
        let task = crate::tls::run(stream, peer, daemon.clone(), permit);
        daemon.tracker.spawn(task.instrument(span));
    } else {
        let task = session::run(stream, peer, daemon.clone(), permit);
        daemon.tracker.spawn(task.instrument(span));
    }
}

/// Admits a connection from `peer`, or says why not, with the line the client gets: a ban
/// on its address, its address connecting too often, or the connection limits.
fn check(peer: SocketAddr, daemon: &Daemon) -> Result<Permit, (Refused, Bytes)> {
    let rules = daemon.moderation.rules();
    if let Some(ban) = rules.ban_on_addr(peer.ip(), chrono::Utc::now()) {
        let notice = Formatter::error(format_args!("{}", ban.banned_text()));
        return Err((Refused::Banned, notice));
    }
    let limits = &daemon.config().limits;
    let per_minute = limits.connects_per_minute_per_ip;
    let paced = daemon
        .connect_pace
        .take(peer.ip(), per_minute, per_minute, Instant::now());
    if let Err(wait) = paced {
        let secs = wait.as_secs() + 1;
        let notice = Formatter::error(format_args!(
            "too many connections from your address; try again in {secs} s"
        ));
        return Err((Refused::ConnectRate, notice));
    }
    let permit = daemon
        .limiter
        .admit(peer.ip(), limits.max_clients, limits.max_clients_per_ip);
    permit.map_err(|cause| {
        let notice: &'static [u8] = match cause {
            Refused::ServerFull => b"! server full\r\n",
            _ => b"! too many connections from your address\r\n",
        };
        (cause, Bytes::from_static(notice))
    })
}

/// Tells a refused client why, briefly, and closes. At most [`MAX_REFUSING`] refused
/// clients are told at once; past that they are closed at once, so a stream of connections
/// that never read cannot pile up tasks and sockets.
fn refuse(mut stream: TcpStream, notice: Bytes, daemon: &Daemon) {
    let Ok(place) = daemon.refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, stream.write_all(&notice)).await;
        drop(place);
    });
}
