//! `watch`: an admin connection that turns into a stream of live events.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::sync::broadcast::error::RecvError;
use tracing::warn;

use super::proto::{self, Framed, Read};
use crate::daemon::Daemon;
use crate::events::Event;

/// A watcher that takes no event for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams events to a watcher until it goes away, falls too far behind in reading, or
/// natterd shuts down (after the `shutdown` event).
pub(super) async fn stream(mut framed: Framed<UnixStream>, daemon: &Daemon, id: Option<Value>) {
    // Subscribed before the answer, so nothing that happens after the watcher sees the
    // answer is missed.
    let mut events = daemon.events.subscribe();
    let ok = proto::ok_line(id, serde_json::json!({ "watching": true }));
    if framed.write_line(&ok).await.is_err() {
        return;
    }
    let mut ending = false;
    loop {
        let line = if ending {
            match events.try_recv() {
                Ok(line) => line.to_string(),
                Err(_) => return,
            }
        } else {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(line) => line.to_string(),
                    Err(RecvError::Lagged(missed)) => Event::Lagged { missed }.to_line(Utc::now()),
                    Err(RecvError::Closed) => return,
                },
                // A watcher only listens; anything it sends is ignored, and its close ends it.
                read = framed.read_line() => match read {
                    Ok(Read::Closed) | Err(_) => return,
                    Ok(_) => continue,
                },
                () = daemon.shutdown_requested() => {
                    ending = true;
                    continue;
                }
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, framed.write_line(&line)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                warn!(timeout = ?WRITE_TIMEOUT, "watcher dropped: it stopped reading");
                return;
            }
        }
    }
}
