//! Bans and mutes shared by the cluster: one JetStream key-value entry (`NAME_moderation`,
//! key `rules`, kept on NATS's disk) holding the whole rules document, changed with
//! compare-and-set on its revision, and watched by every node, which puts each new
//! revision in force and acts on what changed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use tracing::{info, warn};

use crate::daemon::Daemon;
use crate::moderation::{Rules, SharedRules};

/// The one key of the bucket.
const KEY: &str = "rules";
/// How long a natterctl ban or mute may wait for NATS.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// The shared copy, as the moderation store sees it.
#[derive(Debug)]
pub(super) struct KvRules(kv::Store);

/// Runs `future` to its end from synchronous code inside the runtime (a natterctl command,
/// rare), on a worker that may block.
fn block<F: std::future::Future>(future: F) -> io::Result<F::Output> {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(async { tokio::time::timeout(STORE_TIMEOUT, future).await })
    })
    .map_err(|_| io::Error::other("NATS did not answer in time"))
}

impl SharedRules for KvRules {
    fn store(&self, rules: &Rules, revision: u64) -> io::Result<Option<u64>> {
        let json = Bytes::from(serde_json::to_vec(rules).map_err(io::Error::other)?);
        block(async {
            if revision == 0 {
                match self.0.create(KEY, json).await {
                    Ok(rev) => Ok(Some(rev)),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
                    Err(e) => Err(io::Error::other(e)),
                }
            } else {
                match self.0.update(KEY, json, revision).await {
                    Ok(rev) => Ok(Some(rev)),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                    Err(e) => Err(io::Error::other(e)),
                }
            }
        })?
    }

    fn load(&self) -> io::Result<(Rules, u64)> {
        block(load(&self.0))?
    }
}

async fn load(store: &kv::Store) -> io::Result<(Rules, u64)> {
    match store.entry(KEY).await.map_err(io::Error::other)? {
        Some(entry) if matches!(entry.operation, kv::Operation::Put) => {
            let rules = serde_json::from_slice(&entry.value).map_err(io::Error::other)?;
            Ok((rules, entry.revision))
        }
        Some(entry) => Ok((Rules::default(), entry.revision)),
        None => Ok((Rules::default(), 0)),
    }
}

/// Makes the cluster's copy the rules in force here: the first node of a new cluster
/// copies its own (from bans.json) into it. From then on changes go there, and changes from
/// any node come back through a watch.
pub(super) async fn share(store: kv::Store, daemon: Arc<Daemon>) -> anyhow::Result<()> {
    let (rules, revision) = load(&store).await?;
    let (rules, revision) = if revision == 0 {
        let mine = (*daemon.moderation.rules()).clone();
        let json = Bytes::from(serde_json::to_vec(&mine)?);
        match store.create(KEY, json).await {
            Ok(rev) => {
                info!(
                    bans = mine.bans.len(),
                    mutes = mine.mutes.len(),
                    "cluster: this node's bans and mutes are now the cluster's"
                );
                (mine, rev)
            }
            Err(_) => load(&store).await?,
        }
    } else {
        (rules, revision)
    };
    let before = daemon.moderation.put_in_force(rules, revision);
    daemon.apply_shared_rules(&before);
    daemon.moderation.share(Box::new(KvRules(store.clone())));
    let mut watch = store.watch(KEY).await?;
    tokio::spawn(async move {
        while let Some(entry) = watch.next().await {
            let Ok(entry) = entry else { continue };
            let rules = match entry.operation {
                kv::Operation::Put => match serde_json::from_slice::<Rules>(&entry.value) {
                    Ok(rules) => rules,
                    Err(e) => {
                        warn!(error = %e, "cluster: unreadable bans and mutes; kept the ones in force");
                        continue;
                    }
                },
                _ => Rules::default(),
            };
            let before = daemon.moderation.put_in_force(rules, entry.revision);
            daemon.apply_shared_rules(&before);
        }
    });
    Ok(())
}
