//! The cluster's key-value buckets: nickname claims (create-only writes), live nodes, and
//! the bucket for bans and mutes. Only this node's sending task writes through here, in order.

use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::jetstream::{self, kv};
use bytes::Bytes;

use super::wire::kv_key;
use super::{Claim, Cluster, Names};

/// The key-value stores, once NATS answered.
pub(super) struct Stores {
    pub nicks: kv::Store,
    pub nodes: kv::Store,
    pub moderation: kv::Store,
}

/// Opens (making them if need be) the cluster's key-value buckets.
///
/// The bucket's stream is made here, with the settings the client's own `create_key_value`
/// uses, because that call first reads account fields that NATS 2.9 (Debian 12's) does not
/// send.
pub(super) async fn stores(
    js: &jetstream::Context,
    names: &Names,
    timeout: Duration,
) -> anyhow::Result<Stores> {
    let open = |bucket: String, max_age: Duration| async move {
        let config = jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            storage: jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            num_replicas: 1,
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .with_context(|| format!("stream for bucket {bucket}"))?;
        js.get_key_value(bucket.clone())
            .await
            .with_context(|| format!("bucket {bucket}"))
    };
    let nicks = open(names.nicks.clone(), Duration::ZERO).await?;
    let nodes = open(names.nodes.clone(), timeout).await?;
    let moderation = open(names.moderation.clone(), Duration::ZERO).await?;
    Ok(Stores {
        nicks,
        nodes,
        moderation,
    })
}

/// Registers `node` as live; refuses if another process already is, under the same name.
pub(super) async fn register(nodes: &kv::Store, node: &str) -> anyhow::Result<()> {
    let started = Bytes::from(chrono::Utc::now().to_rfc3339());
    match nodes.create(node, started).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
            bail!(
                "cluster: node name {node:?} is already live in the cluster; give this node another [cluster] node"
            )
        }
        Err(e) => bail!("cluster: cannot register node {node:?}: {e}"),
    }
}

pub(super) async fn stores_and_register(
    js: &jetstream::Context,
    names: &Names,
    timeout: Duration,
    node: &str,
) -> Option<Stores> {
    let stores = stores(js, names, timeout).await.ok()?;
    let _ = stores.nodes.put(node, Bytes::from_static(b"back")).await;
    Some(stores)
}

/// Claims `key` for this node with a create-only write. A key held by a node that is no
/// longer live is taken over.
pub(super) async fn claim(stores: &Stores, key: &str, cluster: &Cluster) -> Claim {
    let k = kv_key(key);
    let node = Bytes::from(cluster.node.to_string());
    for _ in 0..2 {
        match stores.nicks.create(&k, node.clone()).await {
            Ok(_) => return Claim::Won,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let Ok(Some(entry)) = stores.nicks.entry(k.clone()).await else {
                    continue;
                };
                let owner = String::from_utf8_lossy(&entry.value).into_owned();
                if owner == *cluster.node {
                    // Ours already (a re-registration after NATS came back).
                    return Claim::Won;
                }
                let live = matches!(stores.nodes.get(owner.clone()).await, Ok(Some(_)));
                if live {
                    return Claim::Taken;
                }
                let _ = stores
                    .nicks
                    .delete_expect_revision(&k, Some(entry.revision))
                    .await;
            }
            Err(_) => return Claim::Unavailable,
        }
    }
    Claim::Taken
}

/// Frees `key` if this node still holds it.
pub(super) async fn release(nicks: &kv::Store, key: &str, node: &str) {
    let k = kv_key(key);
    if let Ok(Some(entry)) = nicks.entry(k.clone()).await
        && entry.value == node.as_bytes()
        && matches!(entry.operation, kv::Operation::Put)
    {
        let _ = nicks.delete_expect_revision(&k, Some(entry.revision)).await;
    }
}
