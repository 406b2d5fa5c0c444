//! Listening sockets and the accept loop.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tracing::{Instrument, info, info_span, warn};

use crate::config::Config;
use crate::format::Formatter;
use crate::hub::Hub;
use crate::session;

/// Pending connections the kernel may hold for us.
const BACKLOG: i32 = 1024;
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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

/// Serves chat on `listeners` until `shutdown` completes.
pub async fn run(listeners: Vec<TcpListener>, config: Config, shutdown: impl Future<Output = ()>) {
    let hub = Arc::new(Hub::new(Formatter::new(config.chat.timestamps)));
    let config = Arc::new(config);
    let mut tasks = Vec::new();
    for listener in listeners {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "listening");
        }
        tasks.push(tokio::spawn(accept_loop(
            listener,
            hub.clone(),
            config.clone(),
        )));
    }
    shutdown.await;
    for task in tasks {
        task.abort();
    }
}

async fn accept_loop(listener: TcpListener, hub: Arc<Hub>, config: Arc<Config>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Lines are gathered into one write per wake-up already; don't delay them.
                let _ = stream.set_nodelay(true);
                let span = info_span!("conn", %peer);
                span.in_scope(|| info!("connection accepted"));
                let task = session::run(stream, peer, hub.clone(), config.clone());
                tokio::spawn(task.instrument(span));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
