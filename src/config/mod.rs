//! natter.toml: the settings, their built-in defaults, and checking a file.
//!
//! Every table denies unknown keys, so a typo is an error instead of a silently ignored
//! setting. A file is checked as a whole: [`parse`] reports every bad key at once, each with
//! the file, the line and the dotted key name, so an operator fixes them in one pass.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dirs;

mod check;
mod reload;

pub use reload::RESTART_KEYS;

/// The whole configuration, one field per table of natter.toml.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: where to listen and how to greet.
    pub server: Server,
    /// `[chat]`: how the conversation looks.
    pub chat: Chat,
    /// `[limits]`: bounds on what one connection may cost.
    pub limits: Limits,
    /// `[admin]`: the operators' control socket.
    pub admin: Admin,
    /// `[log]`: where events are written.
    pub log: Log,
    /// `[tls]`: encrypted chat listeners.
    pub tls: Tls,
    /// `[metrics]`: the Prometheus endpoint.
    pub metrics: Metrics,
    /// `[cluster]`: several nodes sharing the rooms through NATS. Absent: one node alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
}

/// The `[tls]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// Addresses to accept TLS chat connections on; empty: none.
    pub listen: Vec<SocketAddr>,
    /// The certificate chain, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key, PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// The `[metrics]` table.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Where to serve `GET /metrics` in the Prometheus text format; unset: nowhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

/// The `[cluster]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// NATS server URLs (one string or a list), e.g. `nats://127.0.0.1:4222`.
    #[serde(deserialize_with = "one_or_many")]
    pub nats: Vec<String>,
    /// Prefix of every subject and bucket, so two clusters can share one NATS.
    pub name: String,
    /// This node's name, unique in the cluster; unset: the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// A NATS credentials file (`.creds`), if the NATS server wants one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
    /// Talk TLS to NATS, checking its certificate against this CA file (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// How long a node may go unheard before the others count it gone: "15s".
    pub node_timeout: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            nats: vec!["nats://127.0.0.1:4222".to_owned()],
            name: "natter".to_owned(),
            node: None,
            credentials: None,
            tls_ca: None,
            node_timeout: "15s".to_owned(),
        }
    }
}

impl Cluster {
    /// The node's name: `node`, else the host name.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let uname = rustix::system::uname();
            let host = uname.nodename().to_string_lossy();
            // Subjects take letters, digits, - and _ only.
            host.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
    }

    /// `node_timeout` as a duration (checked when read).
    pub fn timeout(&self) -> std::time::Duration {
        humantime::parse_duration(&self.node_timeout).unwrap_or(std::time::Duration::from_secs(15))
    }
}

/// A string or a list of strings, as a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// The `[server]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Addresses to accept chat connections on.
    pub listen: Vec<SocketAddr>,
    /// Shown in the banner line.
    pub name: String,
    /// Optional text shown after the banner; may span several lines.
    pub motd: Option<String>,
    /// Addresses (or CIDR ranges) of TCP proxies whose connections start with a PROXY
    /// protocol header (v1 or v2) giving the real client address. Empty: none.
    pub proxy_protocol: Vec<String>,
    /// Ask telnet clients for binary mode at connect (keeps UTF-8 intact).
    pub telnet_binary: bool,
    /// Where bans and mutes are kept (None: see [`Server::state_dir`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

impl Server {
    /// The state directory in force: `state_dir` if set, else systemd's `$STATE_DIRECTORY`,
    /// else `$XDG_STATE_HOME/natter`, else `~/.local/state/natter`, else `/var/lib/natter`.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        if let Some(dir) = dirs::from_systemd("STATE_DIRECTORY") {
            return dir;
        }
        if let Some(dir) = dirs::env("XDG_STATE_HOME") {
            return PathBuf::from(dir).join("natter");
        }
        match dirs::env("HOME") {
            Some(home) => PathBuf::from(home).join(".local/state/natter"),
            None => PathBuf::from("/var/lib/natter"),
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2323))],
            name: "natter".to_owned(),
            motd: None,
            proxy_protocol: Vec::new(),
            telnet_binary: true,
            state_dir: None,
        }
    }
}

/// The `[chat]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Chat {
    /// Prefix chat and `*` lines with `[HH:MM:SS] `.
    pub timestamps: bool,
    /// Longest nickname, in characters.
    pub max_nick_len: usize,
    /// Longest input line, in raw bytes (telnet commands not counted).
    pub max_line_bytes: usize,
    /// Announce joins and leaves only while at most this many users are online (0: always).
    /// Every join in a room of N costs N lines, so filling a room of N costs N²/2; above a
    /// few thousand users the announcements are most of the server's work and nobody reads them.
    pub announce_max: usize,
    /// Nicknames nobody may take (compared as look-alikes, like all nicknames).
    pub reserved_nicks: Vec<String>,
    /// Group messages and `/me` lines each room keeps in memory for those who enter it.
    pub history: usize,
    /// Whether users may create rooms with `/join`.
    pub user_rooms: bool,
    /// User rooms that may exist at once (config rooms not counted).
    pub max_rooms: usize,
    /// The room everyone enters at login; it always exists.
    pub default_room: String,
    /// `[[chat.rooms]]`: rooms that always exist.
    pub rooms: Vec<ConfigRoom>,
}

/// One `[[chat.rooms]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRoom {
    /// Its name, with or without the leading `#`.
    pub name: String,
    /// Its topic, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl Default for Chat {
    fn default() -> Self {
        Chat {
            timestamps: true,
            max_nick_len: 16,
            max_line_bytes: 512,
            announce_max: 0,
            reserved_nicks: ["admin", "server", "root", "operator", "natter", "system"]
                .map(String::from)
                .to_vec(),
            history: 20,
            user_rooms: true,
            max_rooms: 100,
            default_room: "lobby".to_owned(),
            rooms: Vec::new(),
        }
    }
}

/// The `[limits]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once; one more gets `! server full`. 0: no limit.
    pub max_clients: usize,
    /// Connections open at once from one IP address. 0: no limit.
    pub max_clients_per_ip: usize,
    /// Seconds a new connection has to choose a nickname. 0: no limit.
    pub login_timeout: u64,
    /// Seconds a logged-in user may send nothing before being disconnected. 0: no limit.
    pub idle_timeout: u64,
    /// Lines a user may send at once before the rate applies.
    pub flood_burst: u32,
    /// Lines per second a user may send in the long run. 0: no flood control.
    pub flood_rate: f64,
    /// Bytes of output that may wait for one client. Group messages that do not fit are
    /// skipped for that client; anything else that does not fit disconnects it.
    pub send_queue_bytes: usize,
    /// Seconds a client may accept no bytes while output waits for it. 0: no limit.
    pub write_timeout: u64,
    /// New connections one address may open per minute (IPv6: one /64), all at once or
    /// spread out. 0: no limit.
    pub connects_per_minute_per_ip: u32,
    /// Joins (and their leaves) announced per minute for users from one address (IPv6: one
    /// /64), all at once or spread out; past that, users from it come and go unannounced,
    /// so logging in and out in a loop cannot flood the room. 0: no limit.
    pub announces_per_minute_per_ip: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 10_000,
            max_clients_per_ip: 10,
            login_timeout: 60,
            idle_timeout: 0,
            flood_burst: 10,
            flood_rate: 2.0,
            send_queue_bytes: 256 * 1024,
            write_timeout: 60,
            connects_per_minute_per_ip: 60,
            announces_per_minute_per_ip: 10,
        }
    }
}

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Path of the Unix socket natterctl talks to; unset picks a per-user default (see
    /// [`crate::admin::default_socket_path`]).
    pub socket: Option<PathBuf>,
    /// Permissions of the socket: "0600" (owner only) or "0660" (owner and group).
    pub mode: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            socket: None,
            mode: "0600".to_owned(),
        }
    }
}

impl Admin {
    /// The socket's permission bits.
    pub fn mode_bits(&self) -> u32 {
        if self.mode == "0660" { 0o660 } else { 0o600 }
    }
}

/// The `[log]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// Which events to write, as a tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
    /// Write events to stderr (under systemd that is the journal).
    pub stderr: bool,
    /// Also write log files here; unset, no files.
    pub directory: Option<PathBuf>,
    /// Log file names start with this.
    pub prefix: String,
    /// Start a new file every hour, every day, or never.
    pub rotation: Rotation,
    /// Log files kept, the current one included; older ones are removed.
    pub max_files: usize,
    /// Also log the text of group and private messages (target `natter::chat`).
    pub chat: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".to_owned(),
            stderr: true,
            directory: None,
            prefix: "natterd".to_owned(),
            rotation: Rotation::Daily,
            max_files: 14,
            chat: false,
        }
    }
}

/// How often a new log file is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// `PREFIX.YYYY-MM-DD-HH.log`.
    Hourly,
    /// `PREFIX.YYYY-MM-DD.log`.
    Daily,
    /// One file, `PREFIX.log`; rotate it with an external tool and SIGUSR1.
    Never,
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file as the operator named it.
    pub file: String,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted key, e.g. `chat.max_nick_len`, when one key is at fault.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(vec![ConfigError {
            file,
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        }]),
    }
}

/// Parses and checks `text`; `file` only names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    check::parse(text, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_gives_the_built_in_defaults() {
        let text = include_str!("../../config/natter.toml");
        assert_eq!(parse(text, "natter.toml"), Ok(Config::default()));
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("", "x.toml"), Ok(Config::default()));
    }

    #[test]
    fn reads_every_key() {
        let text = r#"
[server]
listen = ["0.0.0.0:2323", "[::]:2323"]
name = "den"
motd = "be kind"
telnet_binary = false
[chat]
timestamps = false
max_nick_len = 20
max_line_bytes = 1024
[limits]
max_clients = 5
max_clients_per_ip = 2
login_timeout = 30
idle_timeout = 600
flood_burst = 5
flood_rate = 0.5
send_queue_bytes = 65536
write_timeout = 10
[admin]
socket = "/run/natter/admin.sock"
mode = "0660"
[log]
level = "debug"
stderr = false
directory = "/var/log/natter"
prefix = "chat"
rotation = "hourly"
max_files = 3
chat = true
"#;
        let c = parse(text, "x.toml").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert!(c.server.listen[1].is_ipv6());
        assert_eq!(c.server.name, "den");
        assert_eq!(c.server.motd.as_deref(), Some("be kind"));
        assert!(!c.server.telnet_binary && !c.chat.timestamps);
        assert_eq!(c.chat.max_nick_len, 20);
        assert_eq!(c.chat.max_line_bytes, 1024);
        assert_eq!(c.limits.send_queue_bytes, 65536);
        let l = &c.limits;
        assert_eq!((l.max_clients, l.max_clients_per_ip), (5, 2));
        assert_eq!(
            (l.login_timeout, l.idle_timeout, l.write_timeout),
            (30, 600, 10)
        );
        assert_eq!((l.flood_burst, l.flood_rate), (5, 0.5));
        assert_eq!(
            c.admin.socket.as_deref(),
            Some(Path::new("/run/natter/admin.sock"))
        );
        assert_eq!(c.admin.mode_bits(), 0o660);
        assert_eq!(c.log.rotation, Rotation::Hourly);
        assert_eq!(
            (c.log.max_files, c.log.chat, c.log.stderr),
            (3, true, false)
        );
    }

    #[test]
    fn reports_every_error_with_line_and_key() {
        let text = "[server]\nname = 5\nbogus = 1\n\n[chat]\nmax_nick_len = 0\ntimestamps = \"yes\"\n[extra]\nx = 1\n";
        let errors = parse(text, "bad.toml").unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let has = |prefix: &str| shown.iter().any(|s| s.starts_with(prefix));
        assert!(has("bad.toml:2: server.name: "), "{shown:#?}");
        assert!(has("bad.toml:3: server.bogus: unknown field"), "{shown:#?}");
        assert!(has("bad.toml:7: chat.timestamps: "), "{shown:#?}");
        assert!(has("bad.toml:8: extra: unknown field"), "{shown:#?}");
        assert!(
            has("bad.toml:6: chat.max_nick_len: must be from 1 to 64"),
            "{shown:#?}"
        );
        assert_eq!(errors.len(), 5, "{shown:#?}");
    }

    #[test]
    fn range_errors_name_their_key() {
        let text = "[chat]\nmax_nick_len = 0\n\n[server]\nlisten = []\n";
        let shown: Vec<String> = parse(text, "r.toml")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "r.toml:2: chat.max_nick_len: must be from 1 to 64",
                "r.toml:5: server.listen: needs at least one address",
            ]
        );
    }

    #[test]
    fn rooms_are_checked() {
        let text = "[chat]\nhistory = 20\ndefault_room = \"#main\"\n\
                    [[chat.rooms]]\nname = \"#main\"\ntopic = \"welcome\"\n\
                    [[chat.rooms]]\nname = \"rust\"\n";
        let c = parse(text, "r.toml").unwrap();
        assert_eq!(c.chat.rooms.len(), 2);
        assert_eq!(c.chat.rooms[0].topic.as_deref(), Some("welcome"));
        let bad = format!(
            "[chat]\nhistory = 1001\nmax_rooms = 10001\ndefault_room = \"a b\"\n\
             [[chat.rooms]]\nname = \"x\"\ntopic = \"{}\"\n\
             [[chat.rooms]]\nname = \"#X\"\n\
             [[chat.rooms]]\nname = \"\\u001b[2J\"\n",
            "t".repeat(201)
        );
        let errors: Vec<String> = parse(&bad, "r.toml")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        let has = |s: &str| errors.iter().any(|e| e.contains(s));
        assert!(has("chat.history: must be from 0 to 1000"), "{errors:#?}");
        assert!(
            has("chat.max_rooms: must be from 0 to 10000"),
            "{errors:#?}"
        );
        assert!(has("chat.default_room: must be a room name"), "{errors:#?}");
        assert!(
            has("the topic of \"x\" must be at most 200 bytes"),
            "{errors:#?}"
        );
        assert!(has("\"#X\" is named twice"), "{errors:#?}");
        assert!(has("is not a room name"), "{errors:#?}");
        let stray = "[[chat.rooms]]\nname = \"y\"\nbogus = 1\n";
        let errors = parse(stray, "r.toml").unwrap_err();
        assert!(errors[0].to_string().contains("bogus"), "{errors:?}");
    }

    #[test]
    fn cluster_is_checked() {
        let c = parse(
            "[cluster]\nnats = \"nats://127.0.0.1:4222\"\nnode = \"n1\"\n",
            "c.toml",
        )
        .unwrap();
        let cluster = c.cluster.unwrap();
        assert_eq!(cluster.nats, ["nats://127.0.0.1:4222"]);
        assert_eq!(cluster.node_name(), "n1");
        assert_eq!(cluster.timeout(), std::time::Duration::from_secs(15));
        assert!(parse("", "c.toml").unwrap().cluster.is_none());
        let bad = "[cluster]\nnats = [\"http://x\"]\nname = \"a.b\"\nnode = \"x y\"\n\
                   node_timeout = \"1s\"\ncredentials = \"rel.creds\"\n";
        let errors: Vec<String> = parse(bad, "c.toml")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        for key in [
            "cluster.nats",
            "cluster.name",
            "cluster.node",
            "cluster.node_timeout",
            "cluster.credentials",
        ] {
            assert!(errors.iter().any(|e| e.contains(key)), "{key}: {errors:#?}");
        }
        let list = parse("[cluster]\nnats = []\n", "c.toml").unwrap_err();
        assert!(list[0].to_string().contains("cluster.nats"));
    }

    #[test]
    fn changed_keys_are_listed() {
        let old = Config::default();
        let mut new = Config::default();
        new.server.motd = Some("hi".into());
        new.server
            .listen
            .push(SocketAddr::from(([127, 0, 0, 1], 1)));
        new.chat.timestamps = false;
        assert_eq!(
            old.changed_keys(&new),
            ["chat.timestamps", "server.listen", "server.motd"]
        );
        let kept = new.clone().keeping_restart_keys(&old);
        assert_eq!(old.changed_keys(&kept), ["chat.timestamps", "server.motd"]);
        // Every restart key is kept, optional ones included, whatever the new file says.
        let mut moved = Config::default();
        moved.server.state_dir = Some("/var/lib/other".into());
        moved.admin.socket = Some("/run/other.sock".into());
        moved.admin.mode = "0660".into();
        moved.log.directory = Some("/var/log/other".into());
        moved.log.max_files = 3;
        moved.log.level = "debug".into();
        let kept = moved.keeping_restart_keys(&old);
        assert_eq!(old.changed_keys(&kept), ["log.level"]);
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let errors = parse("[server]\nname = \n", "s.toml").unwrap_err();
        assert_eq!(errors[0].line, Some(2), "{errors:?}");
    }

    #[test]
    fn bad_address_is_reported() {
        let errors = parse("[server]\nlisten = [\"nope\"]\n", "a.toml").unwrap_err();
        assert_eq!(errors[0].key.as_deref(), Some("server.listen"));
        assert_eq!(errors[0].line, Some(2));
    }

    /// What sessions and the accept loop do with the numbers: none of it may panic for a
    /// configuration that passed the check.
    fn exercise(config: &Config) {
        use tokio::time::Instant;
        let now = Instant::now();
        let l = &config.limits;
        for secs in [l.login_timeout, l.idle_timeout, l.write_timeout] {
            let _ = now + std::time::Duration::from_secs(secs);
        }
        let mut bucket = crate::flood::Bucket::new(l.flood_rate, l.flood_burst, now);
        for _ in 0..3 {
            let _ = bucket.take(now);
            bucket.charge(0.1, now);
            let _ = now + bucket.wait(now).unwrap_or_default();
            let _ = now + bucket.debt(now).unwrap_or_default();
        }
        let pace = crate::pace::Pace::default();
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        for per_minute in [l.connects_per_minute_per_ip, l.announces_per_minute_per_ip] {
            let _ = pace.take(ip, per_minute, per_minute, now);
        }
        let outbox = crate::outbox::Outbox::new(l.send_queue_bytes);
        outbox.push(bytes::Bytes::from_static(b"x\r\n"));
        let mut decoder = crate::codec::Decoder::new(config.chat.max_line_bytes, true);
        let _ = decoder.decode(b"hello\r\n");
        let settings = crate::hub::RoomSettings::from(config);
        let hub = crate::hub::Hub::new(settings, crate::events::Events::default());
        hub.set_settings(crate::hub::RoomSettings::from(config));
    }

    /// Extreme numbers for every numeric key, as TOML can write them.
    fn extreme() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("1".to_owned()),
            Just("9223372036854775807".to_owned()),
            Just("-9223372036854775808".to_owned()),
            Just("4294967296".to_owned()),
            Just("1e-20".to_owned()),
            Just("1e308".to_owned()),
            Just("-0.0".to_owned()),
            Just("nan".to_owned()),
            Just("inf".to_owned()),
            Just("-inf".to_owned()),
            Just("5e-324".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
        ]
    }

    proptest::proptest! {
        #[test]
        fn extreme_numbers_are_refused_or_safe(
            key in proptest::sample::select(vec![
                ("chat", "max_nick_len"),
                ("chat", "max_line_bytes"),
                ("chat", "announce_max"),
                ("chat", "history"),
                ("chat", "max_rooms"),
                ("limits", "max_clients"),
                ("limits", "max_clients_per_ip"),
                ("limits", "login_timeout"),
                ("limits", "idle_timeout"),
                ("limits", "flood_burst"),
                ("limits", "flood_rate"),
                ("limits", "send_queue_bytes"),
                ("limits", "write_timeout"),
                ("limits", "connects_per_minute_per_ip"),
                ("limits", "announces_per_minute_per_ip"),
                ("log", "max_files"),
            ]),
            value in extreme(),
        ) {
            let (table, name) = key;
            let text = format!("[{table}]\n{name} = {value}\n");
            if let Ok(config) = parse(&text, "p.toml") {
                exercise(&config);
            }
        }
    }

    #[test]
    fn values_that_panicked_sessions_are_refused() {
        for (text, key) in [
            ("[limits]\nflood_rate = 1e-20\n", "limits.flood_rate"),
            ("[limits]\nflood_rate = nan\n", "limits.flood_rate"),
            (
                "[limits]\nlogin_timeout = 9223372036854775807\n",
                "limits.login_timeout",
            ),
            (
                "[limits]\nidle_timeout = 9223372036854775807\n",
                "limits.idle_timeout",
            ),
            ("[limits]\nwrite_timeout = 86401\n", "limits.write_timeout"),
            ("[limits]\nflood_burst = 4294967295\n", "limits.flood_burst"),
        ] {
            let errors = parse(text, "x.toml").unwrap_err();
            assert_eq!(errors[0].key.as_deref(), Some(key), "{text}: {errors:?}");
        }
        exercise(&Config::default());
    }
}
