//! Listening sockets and the accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::{Instrument, info, info_span, warn};

use crate::daemon::Daemon;
use crate::session;
use crate::stats::add;

/// Pending connections the kernel may hold for us.
const BACKLOG: i32 = 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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
pub async fn run(listeners: Vec<TcpListener>, daemon: Arc<Daemon>) {
    let mut accepting = Vec::new();
    for listener in listeners {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "listening");
        }
        accepting.push(tokio::spawn(accept_loop(listener, daemon.clone())));
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

async fn accept_loop(listener: TcpListener, daemon: Arc<Daemon>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                add(&daemon.stats.accepted, 1);
                // Lines are gathered into one write per wake-up already; don't delay them.
                let _ = stream.set_nodelay(true);
                let span = info_span!("conn", %peer);
                span.in_scope(|| info!("connection accepted"));
                let task = session::run(stream, peer, daemon.clone());
                daemon.tracker.spawn(task.instrument(span));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
