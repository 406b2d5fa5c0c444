//! What the daemon's actions give back: plain values, the same for every caller (the admin
//! socket sends them as their serde form, SIGHUP logs a reload's outcome, tests read them).
//! The daemon and the hub never build admin replies; the admin module depends on them, not
//! the other way round.

use serde::{Deserialize, Serialize};

/// Why a request was refused; `code` is for scripts, `message` for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// Stable machine-readable cause, e.g. `not_found`, `bad_json`.
    pub code: String,
    /// One line for a person.
    pub message: String,
    /// Further lines, e.g. every error in a rejected config file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Failure {
    /// A failure without details.
    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_owned(),
            message: message.into(),
            details: Vec::new(),
        }
    }
}

/// The reply to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsReply {
    /// natterd's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Addresses accepting chat connections.
    pub listen: Vec<String>,
    /// Logged-in users now.
    pub users_online: u64,
    /// Rooms now, configured and user-made.
    #[serde(default)]
    pub rooms: u64,
    /// Copies of group messages and `/me` lines queued for readers on this node.
    #[serde(default)]
    pub deliveries: u64,
    /// This node's place in a cluster; absent alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStats>,
    /// Most users online at once since start.
    pub peak_users: u64,
    /// Connections open now, logged in or not.
    pub connections: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Group and private messages passed on.
    pub lines_relayed: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// Users kicked by an operator.
    pub kicks: u64,
    /// Connections refused before the greeting, by cause.
    pub refused: std::collections::BTreeMap<String, u64>,
    /// Connections dropped by the server, by cause.
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Group messages skipped for slow readers.
    pub skipped_messages: u64,
    /// Log lines lost because the log file writer could not keep up.
    pub log_lines_dropped: u64,
    /// Log events clients caused that were not written, to keep the log bounded.
    #[serde(default)]
    pub log_events_suppressed: u64,
    /// Messages refused because their sender was muted.
    #[serde(default)]
    pub muted_messages: u64,
    /// `/report`s received from users.
    #[serde(default)]
    pub reports: u64,
    /// Bans in force.
    #[serde(default)]
    pub bans: u64,
    /// Mutes in force.
    #[serde(default)]
    pub mutes: u64,
}

/// A node's view of its cluster, in `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStats {
    /// This node's name.
    pub node: String,
    /// Whether NATS is connected (if not, no new logins).
    pub connected: bool,
    /// The NATS server it is connected to.
    pub server: String,
    /// Other nodes heard within the node timeout.
    pub nodes: Vec<String>,
    /// Messages to other nodes dropped because NATS could not take them fast enough.
    pub dropped: u64,
    /// Messages from the bus that could not be read.
    pub bad_messages: u64,
    /// Times this node fell behind and NATS dropped messages for it.
    pub missed: u64,
}

/// The reply to `reload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadReply {
    /// Keys whose new values are in effect.
    pub changed: Vec<String>,
    /// Keys that changed in the file but keep their old value until a restart.
    pub restart_needed: Vec<String>,
}

/// The reply to `ban`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BanReply {
    /// What is banned, normalized (`10.1.2.3/8` is `10.0.0.0/8`).
    pub target: String,
    /// When it ends, if ever.
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Users disconnected by it.
    pub kicked: Vec<String>,
}

/// The reply to `unban`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnbanReply {
    /// What is no longer banned.
    pub target: String,
}

/// The reply to `mute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MuteReply {
    /// Who is muted.
    pub nick: String,
    /// When it ends, if ever.
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether they are online (and were told).
    pub online: bool,
}

/// The reply to `unmute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmuteReply {
    /// Who is no longer muted.
    pub nick: String,
}

/// The reply to `bans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BansReply {
    /// Bans in force, oldest first.
    pub bans: Vec<crate::moderation::Rule>,
    /// Mutes in force, oldest first.
    pub mutes: Vec<crate::moderation::Rule>,
}

/// The reply to `kick`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KickReply {
    /// The nickname as the user chose it.
    pub nick: String,
}
