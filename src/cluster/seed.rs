//! Topics and history for a node that starts after others: asked of one running node (a
//! queue group answers each request once), answered by every node to the next ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tracing::info;

use super::Names;
use crate::daemon::Daemon;
use crate::hub::RoomState;

/// How long a starting node waits for another's rooms and history.
const SEED_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks one running node (if any) for the rooms' topics and history, and takes them.
pub(super) async fn seed(client: &async_nats::Client, names: &Names, daemon: &Daemon) {
    let ask = |what: &str, body: Bytes| {
        let subject = format!("{}.{what}", names.state);
        async move {
            let reply = tokio::time::timeout(SEED_TIMEOUT, client.request(subject, body)).await;
            reply.ok()?.ok().map(|m| m.payload)
        }
    };
    let Some(rooms) = ask("rooms", Bytes::new()).await else {
        return;
    };
    let Ok(mut rooms) = serde_json::from_slice::<Vec<RoomState>>(&rooms) else {
        return;
    };
    for room in &mut rooms {
        if let Some(full) = ask("history", Bytes::from(room.key.clone())).await
            && let Ok(full) = serde_json::from_slice::<RoomState>(&full)
        {
            room.history = full.history;
        }
    }
    info!(
        rooms = rooms.len(),
        "cluster: topics and history taken from a running node"
    );
    daemon.hub.seed(rooms);
}

/// Answers nodes that start later: the rooms (without history), or one room's history.
pub(super) async fn answer_state(
    client: async_nats::Client,
    daemon: Arc<Daemon>,
    mut requests: async_nats::Subscriber,
) {
    while let Some(request) = requests.next().await {
        let Some(reply) = request.reply else { continue };
        let mut rooms = daemon.hub.room_states();
        let body = if request.subject.ends_with(".history") {
            let key = String::from_utf8_lossy(&request.payload);
            rooms
                .into_iter()
                .find(|r| r.key == key)
                .map(|r| serde_json::to_vec(&r))
        } else {
            for room in &mut rooms {
                room.history.clear();
            }
            Some(serde_json::to_vec(&rooms))
        };
        if let Some(Ok(body)) = body {
            let _ = client.publish(reply, body.into()).await;
        }
    }
}
