//! Several natterd nodes sharing the rooms through NATS (`[cluster]`).
//!
//! Each node publishes what its users do on one subject, `NAME.bus` ([`wire::Wire`]), and
//! mirrors what the others publish into its hub, so everyone in a room sees everyone, on any
//! node. NATS keeps each publisher's order, so each sender's lines arrive in order
//! everywhere; a node publishes each thing once and ignores its own, so nothing arrives twice.
//!
//! Nicknames are claimed in a JetStream key-value bucket with create-only writes
//! (`NAME_nicks`): of two nodes giving the same name at once, one create fails. Every write to
//! that bucket from this node goes through one task, in order, so freeing a name and claiming
//! it again cannot cross. Nodes announce themselves every third of `node_timeout`; a node
//! unheard for longer is gone, and its users leave every room and free their names.
//!
//! Files: this one the connection, the tasks (bus in, bus out, heartbeat) and their state;
//! `wire.rs` the messages; `store.rs` the key-value buckets and nickname claims; `rules.rs`
//! bans and mutes; `seed.rs` topics and history for nodes that start later.

mod rules;
mod seed;
mod store;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config;
use crate::daemon::Daemon;
use crate::hub::Link;
use seed::{answer_state, seed};
use store::{Stores, claim, register, release, stores, stores_and_register};
use wire::{MAX_MESSAGE, Wire};

/// Messages waiting for NATS before the hub starts dropping them (and counting).
const OUTBOUND: usize = 65_536;
/// How long a login waits for its nickname claim.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long natterd waits for NATS at start before serving its own users alone.
const START_WAIT: Duration = Duration::from_secs(3);

/// What the hub hands the cluster to send.
#[derive(Debug)]
pub enum Out {
    /// A message for the other nodes.
    Wire(Wire),
    /// A nickname key this node no longer holds, to free in the store.
    Release(String),
    /// Claim a nickname key for this node; the answer goes back.
    Claim(String, oneshot::Sender<Claim>),
    /// This node is stopping: take it out of the node bucket.
    Unregister,
}

/// The answer to a nickname claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This node holds it now.
    Won,
    /// Another node's user has it.
    Taken,
    /// NATS cannot be reached; nothing can be given out.
    Unavailable,
}

/// This node's part in the cluster.
#[derive(Debug)]
pub struct Cluster {
    node: Arc<str>,
    tx: mpsc::Sender<Out>,
    connected: AtomicBool,
    /// Other nodes by name, and when each was last heard.
    seen: Mutex<HashMap<String, Instant>>,
    /// Bus messages that could not be read (too long, not JSON, control characters).
    pub bad_messages: AtomicU64,
    /// Times NATS said this node fell behind and messages for it were dropped.
    pub missed: AtomicU64,
    server: Mutex<String>,
}

/// The buckets and subjects of one cluster name.
#[derive(Debug, Clone)]
struct Names {
    bus: String,
    nicks: String,
    nodes: String,
    moderation: String,
    /// Requests for rooms' topics and history (`.rooms`, `.history`).
    state: String,
}

impl Names {
    fn new(name: &str) -> Names {
        Names {
            bus: format!("{name}.bus"),
            nicks: format!("{name}_nicks"),
            nodes: format!("{name}_nodes"),
            moderation: format!("{name}_moderation"),
            state: format!("{name}.state"),
        }
    }
}

/// The connection and what the sending task needs of it.
struct Nats {
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    timeout: Duration,
}

impl Cluster {
    /// Connects this node to the cluster `config` names and links `daemon`'s hub to it. If
    /// NATS answers within a few seconds, refuses to start when another live node has this
    /// node's name; if not, serves its own users alone until NATS is back.
    pub async fn start(
        config: &config::Cluster,
        daemon: Arc<Daemon>,
    ) -> anyhow::Result<Arc<Cluster>> {
        let node: Arc<str> = Arc::from(config.node_name());
        let names = Names::new(&config.name);
        let timeout = config.timeout();
        let (events_tx, mut events) = mpsc::channel(64);
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("natterd {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            .event_callback(move |event| {
                let tx = events_tx.clone();
                async move {
                    let _ = tx.try_send(event);
                }
            });
        if let Some(path) = &config.credentials {
            options = options
                .credentials_file(path)
                .await
                .with_context(|| format!("cannot read NATS credentials {}", path.display()))?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        let client = options
            .connect(config.nats.clone())
            .await
            .context("cannot set up the NATS connection")?;
        let (tx, rx) = mpsc::channel(OUTBOUND);
        let cluster = Arc::new(Cluster {
            node: node.clone(),
            tx: tx.clone(),
            connected: AtomicBool::new(false),
            seen: Mutex::default(),
            bad_messages: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            server: Mutex::new(String::new()),
        });
        daemon.hub.link(Link::new(node.clone(), tx));
        let js = jetstream::new(client.clone());
        // Wait a little for NATS, to check the node's name before serving anyone.
        let stores = match tokio::time::timeout(START_WAIT, stores(&js, &names, timeout)).await {
            Ok(Ok(stores)) => {
                register(&stores.nodes, &node).await?;
                rules::share(stores.moderation.clone(), daemon.clone())
                    .await
                    .context("cluster: cannot share bans and mutes")?;
                cluster.connected.store(true, Relaxed);
                info!(%node, servers = ?config.nats, "cluster: connected to NATS");
                Some(stores)
            }
            Ok(Err(e)) => bail!("cluster: NATS answered but its key-value store did not: {e:#}"),
            Err(_) => {
                warn!(%node, servers = ?config.nats, "cluster: NATS unreachable; serving this node's users alone until it is back");
                None
            }
        };
        let bus = client
            .subscribe(names.bus.clone())
            .await
            .context("cannot subscribe to the cluster bus")?;
        // Topics and history from a running node first, then answer the next ones: a node
        // in the answering group could be asked its own question.
        if cluster.is_connected() {
            seed(&client, &names, &daemon).await;
        }
        let state = client
            .queue_subscribe(format!("{}.*", names.state), "state".to_owned())
            .await
            .context("cannot subscribe to state requests")?;
        tokio::spawn(answer_state(client.clone(), daemon.clone(), state));
        tokio::spawn(receive(cluster.clone(), daemon.clone(), bus));
        let nats = Nats {
            client: client.clone(),
            js,
            names: names.clone(),
            timeout,
        };
        tokio::spawn(send(cluster.clone(), daemon.clone(), nats, stores, rx));
        tokio::spawn(heartbeat(cluster.clone(), daemon.clone(), timeout));
        let c = cluster.clone();
        let d = daemon.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                c.on_event(&d, event, &client);
            }
        });
        cluster.queue(Out::Wire(Wire::Hello {
            node: node.to_string(),
        }));
        Ok(cluster)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether NATS is connected, so nicknames can be given out.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// Other nodes heard from within the node timeout.
    pub fn nodes(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut nodes: Vec<String> = seen.keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// The NATS server connected to, if any.
    pub fn server(&self) -> String {
        self.server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Claims nickname key `key` for a user of this node.
    pub async fn claim(&self, key: &str) -> Claim {
        if !self.is_connected() {
            return Claim::Unavailable;
        }
        let (reply, answer) = oneshot::channel();
        if self.tx.try_send(Out::Claim(key.to_owned(), reply)).is_err() {
            return Claim::Unavailable;
        }
        tokio::time::timeout(CLAIM_TIMEOUT, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Claim::Unavailable)
    }

    /// Frees nickname key `key`, claimed for a login that then did not happen.
    pub fn release(&self, key: &str) {
        self.queue(Out::Release(key.to_owned()));
    }

    /// Tells the other nodes this node is stopping, after its users' goodbyes.
    pub async fn leave(&self) {
        self.queue(Out::Wire(Wire::Bye {
            node: self.node.to_string(),
        }));
        self.queue(Out::Unregister);
        // The sender drains the queue in order; give it a moment to get this out.
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.tx.capacity() < OUTBOUND && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn queue(&self, out: Out) {
        let _ = self.tx.try_send(out);
    }

    fn on_event(&self, daemon: &Daemon, event: async_nats::Event, client: &async_nats::Client) {
        match event {
            async_nats::Event::Connected => {
                let was = self.connected.swap(true, Relaxed);
                let info = client.server_info();
                *self.server.lock().unwrap_or_else(PoisonError::into_inner) =
                    format!("{}:{} ({})", info.host, info.port, info.server_name);
                if !was {
                    info!("cluster: NATS connected; registering this node's users");
                    // Everyone learns who is here again, and this node who is elsewhere.
                    for user in daemon.hub.roster() {
                        let (reply, _) = oneshot::channel();
                        self.queue(Out::Claim(user.key.clone(), reply));
                    }
                    let node = self.node.to_string();
                    self.queue(Out::Wire(Wire::Roster {
                        node: node.clone(),
                        users: daemon.hub.roster(),
                    }));
                    self.queue(Out::Wire(Wire::Hello { node }));
                }
            }
            async_nats::Event::Disconnected => {
                if self.connected.swap(false, Relaxed) {
                    warn!(
                        "cluster: NATS lost; serving this node's users alone, no new logins until it is back"
                    );
                }
            }
            async_nats::Event::SlowConsumer(_) => {
                let before = self.missed.fetch_add(1, Relaxed);
                if before.is_power_of_two() || before == 0 {
                    warn!(
                        times = before + 1,
                        "cluster: this node fell behind; messages from other nodes were dropped"
                    );
                }
            }
            other => info!(event = %other, "cluster: NATS"),
        }
    }

    /// Records that `node` was heard from now; says whether it is new.
    fn heard(&self, node: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.insert(node.to_owned(), Instant::now()).is_none()
    }

    /// Nodes unheard for longer than `timeout`, forgotten.
    fn expired(&self, timeout: Duration) -> Vec<String> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let gone: Vec<String> = seen
            .iter()
            .filter(|(_, at)| now.duration_since(**at) > timeout)
            .map(|(n, _)| n.clone())
            .collect();
        for node in &gone {
            seen.remove(node);
        }
        gone
    }

    fn forget(&self, node: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.remove(node);
    }
}

/// Reads the bus: what other nodes say goes into the hub.
async fn receive(cluster: Arc<Cluster>, daemon: Arc<Daemon>, mut bus: async_nats::Subscriber) {
    while let Some(message) = bus.next().await {
        let wire = if message.payload.len() > MAX_MESSAGE {
            None
        } else {
            serde_json::from_slice::<Wire>(&message.payload).ok()
        };
        let wire = wire.filter(Wire::is_clean);
        let Some(wire) = wire else {
            cluster.bad_messages.fetch_add(1, Relaxed);
            continue;
        };
        if wire.node() == &*cluster.node {
            continue;
        }
        let node = wire.node().to_owned();
        let new = cluster.heard(&node);
        match &wire {
            Wire::Hello { .. } => {
                cluster.queue(Out::Wire(Wire::Roster {
                    node: cluster.node.to_string(),
                    users: daemon.hub.roster(),
                }));
            }
            Wire::Bye { .. } => cluster.forget(&node),
            Wire::Kick {
                to,
                nick,
                reason,
                by,
                ..
            } if **to == *cluster.node => {
                let _ = daemon.kick(nick, reason.clone(), *by);
            }
            _ => {}
        }
        if new && !matches!(wire, Wire::Bye { .. }) {
            info!(%node, "cluster: node joined");
            // A node heard again after the timeout (stopped, cut off) does not know it was
            // forgotten: ask everyone for their users.
            if !matches!(wire, Wire::Hello { .. } | Wire::Roster { .. }) {
                cluster.queue(Out::Wire(Wire::Hello {
                    node: cluster.node.to_string(),
                }));
            }
        }
        daemon.hub.apply_remote(wire);
    }
}

/// Sends what the hub queued, in order, and does this node's key-value writes.
async fn send(
    cluster: Arc<Cluster>,
    daemon: Arc<Daemon>,
    nats: Nats,
    mut stores: Option<Stores>,
    mut rx: mpsc::Receiver<Out>,
) {
    let Nats {
        client,
        js,
        names,
        timeout,
    } = nats;
    while let Some(out) = rx.recv().await {
        if stores.is_none() && cluster.is_connected() {
            stores = stores_and_register(&js, &names, timeout, &cluster.node).await;
            if let Some(s) = &stores
                && let Err(e) = rules::share(s.moderation.clone(), daemon.clone()).await
            {
                warn!(error = %e, "cluster: cannot share bans and mutes");
            }
        }
        match out {
            Out::Wire(wire) => {
                if let (Wire::Alive { .. }, Some(s)) = (&wire, &stores) {
                    // Keeps this node's entry from expiring: it is live.
                    let _ = s
                        .nodes
                        .put(&*cluster.node, Bytes::from_static(b"alive"))
                        .await;
                }
                let Ok(json) = serde_json::to_vec(&wire) else {
                    continue;
                };
                if let Err(e) = client.publish(names.bus.clone(), json.into()).await {
                    warn!(error = %e, "cluster: cannot publish");
                }
            }
            Out::Release(key) => {
                if let Some(s) = &stores {
                    release(&s.nicks, &key, &cluster.node).await;
                }
            }
            Out::Unregister => {
                if let Some(s) = &stores {
                    let _ = s.nodes.delete(&*cluster.node).await;
                }
            }
            Out::Claim(key, reply) => {
                let claim = match &stores {
                    Some(s) => claim(s, &key, &cluster).await,
                    None => Claim::Unavailable,
                };
                let _ = reply.send(claim);
            }
        }
    }
}

/// Says this node is alive every third of the timeout, refreshes its entry in the node
/// bucket, and lets the users of nodes unheard for longer than the timeout go.
async fn heartbeat(cluster: Arc<Cluster>, daemon: Arc<Daemon>, timeout: Duration) {
    let mut tick = tokio::time::interval((timeout / 3).max(Duration::from_millis(500)));
    let mut reap = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                cluster.queue(Out::Wire(Wire::Alive { node: cluster.node.to_string() }));
            }
            _ = reap.tick() => {
                if !cluster.is_connected() {
                    continue;
                }
                for node in cluster.expired(timeout) {
                    // Their names stay in the bucket until the node's own entry expires
                    // (the same timeout); a claim then takes them over.
                    let keys = daemon.hub.node_gone(&node);
                    warn!(%node, users = keys.len(), "cluster: node unheard for the node timeout; its users left");
                }
            }
        }
    }
}
