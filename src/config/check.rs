//! Reading natter.toml: every bad key at once, each with its line, and the range of every
//! numeric setting.

use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::{Config, ConfigError};
use crate::hub::RoomName;
use crate::hub::room::MAX_TEXT_BYTES;

/// Parses and checks `text`; `file` only names it in errors.
pub(super) fn parse(text: &str, file: &str) -> Result<Config, Vec<ConfigError>> {
    let error = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
        file: file.to_owned(),
        line: span.map(|s| line_of(text, s.start)),
        key,
        message,
    };
    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .iter()
            .map(|e| error(e.span(), None, e.message().to_owned()))
            .collect());
    }
    let spans = root.clone();
    let mut errors = Vec::new();
    // serde stops at the first bad key; drop that key and go again so that every bad key is
    // reported. Each round removes one entry, so this ends.
    let config = loop {
        match Config::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(config) => break config,
            Err(e) => {
                let found = e.span().and_then(|s| locate(spans.get_ref(), &s, ""));
                let Some((key, key_span)) = found else {
                    errors.push(error(e.span(), None, e.message().to_owned()));
                    return Err(errors);
                };
                errors.push(error(e.span(), Some(key), e.message().to_owned()));
                remove(root.get_mut(), &key_span);
            }
        }
    };
    for (key, message) in config.problems() {
        let span = find(spans.get_ref(), &key);
        errors.push(error(span, Some(key), message));
    }
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

impl Config {
    /// Values that parse but make no sense, as (dotted key, message).
    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                out.push((key.to_owned(), message.to_owned()));
            }
        };
        let s = &self.server;
        check(
            !s.listen.is_empty(),
            "server.listen",
            "needs at least one address",
        );
        check(
            (1..=64).contains(&s.name.chars().count()) && !s.name.chars().any(char::is_control),
            "server.name",
            "must be 1 to 64 characters, with no control characters",
        );
        if let Some(motd) = &s.motd {
            check(
                motd.len() <= 4096 && !motd.chars().any(|c| c.is_control() && c != '\n'),
                "server.motd",
                "must be at most 4096 bytes, with no control characters but newlines",
            );
        }
        check(
            s.proxy_protocol.len() <= 100
                && crate::proxy::Trusted::parse(&s.proxy_protocol).is_ok(),
            "server.proxy_protocol",
            "must be at most 100 addresses or CIDR ranges, e.g. [\"127.0.0.1/32\"]",
        );
        if let Some(dir) = &s.state_dir {
            check(
                dir.is_absolute(),
                "server.state_dir",
                "must be an absolute path",
            );
        }
        let c = &self.chat;
        check(
            c.reserved_nicks.len() <= 1000
                && c.reserved_nicks
                    .iter()
                    .all(|n| (1..=64).contains(&n.chars().count())),
            "chat.reserved_nicks",
            "must be at most 1000 names of 1 to 64 characters",
        );
        check(
            RoomName::parse(&c.default_room).is_ok(),
            "chat.default_room",
            "must be a room name: 1 to 24 characters after an optional #, no spaces or controls",
        );
        check(
            c.rooms.len() <= 1000,
            "chat.rooms",
            "must be at most 1000 rooms",
        );
        let mut keys = std::collections::HashSet::new();
        for room in &c.rooms {
            let name = RoomName::parse(&room.name);
            check(
                name.is_ok(),
                "chat.rooms",
                &format!(
                    "{:?} is not a room name: 1 to 24 characters after an optional #, no spaces or controls",
                    room.name
                ),
            );
            if let Ok(name) = name {
                check(
                    keys.insert(name.key),
                    "chat.rooms",
                    &format!("{:?} is named twice", room.name),
                );
            }
            if let Some(topic) = &room.topic {
                check(
                    topic.len() <= MAX_TEXT_BYTES && !topic.chars().any(char::is_control),
                    "chat.rooms",
                    &format!(
                        "the topic of {:?} must be at most {MAX_TEXT_BYTES} bytes, with no control characters",
                        room.name
                    ),
                );
            }
        }
        let l = &self.limits;
        check(
            l.flood_rate == 0.0 || (0.01..=1000.0).contains(&l.flood_rate),
            "limits.flood_rate",
            "must be 0 (off) or from 0.01 to 1000 lines per second",
        );
        let log = &self.log;
        for (key, value, range) in [
            ("chat.max_nick_len", c.max_nick_len as u64, 1..=64),
            ("chat.max_line_bytes", c.max_line_bytes as u64, 16..=65536),
            ("chat.announce_max", c.announce_max as u64, 0..=10_000_000),
            ("chat.history", c.history as u64, 0..=1000),
            ("chat.max_rooms", c.max_rooms as u64, 0..=10_000),
            ("limits.max_clients", l.max_clients as u64, 0..=10_000_000),
            (
                "limits.max_clients_per_ip",
                l.max_clients_per_ip as u64,
                0..=10_000_000,
            ),
            ("limits.login_timeout", l.login_timeout, 0..=DAY),
            ("limits.idle_timeout", l.idle_timeout, 0..=30 * DAY),
            ("limits.flood_burst", u64::from(l.flood_burst), 1..=10_000),
            (
                "limits.send_queue_bytes",
                l.send_queue_bytes as u64,
                8192..=64 << 20,
            ),
            ("limits.write_timeout", l.write_timeout, 0..=DAY),
            (
                "limits.connects_per_minute_per_ip",
                u64::from(l.connects_per_minute_per_ip),
                0..=100_000,
            ),
            (
                "limits.announces_per_minute_per_ip",
                u64::from(l.announces_per_minute_per_ip),
                0..=100_000,
            ),
            ("log.max_files", log.max_files as u64, 1..=10_000),
        ] {
            let (lo, hi) = (range.start(), range.end());
            check(
                range.contains(&value),
                key,
                &format!("must be from {lo} to {hi}"),
            );
        }
        check(
            tracing_subscriber::EnvFilter::try_new(&log.level).is_ok(),
            "log.level",
            "is not a valid filter (e.g. \"info\", \"warn,natter::chat=info\")",
        );
        check(
            !log.prefix.is_empty()
                && log
                    .prefix
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_".contains(c)),
            "log.prefix",
            "must be letters, digits, - and _ only",
        );
        if let Some(dir) = &log.directory {
            check(
                dir.is_absolute(),
                "log.directory",
                "must be an absolute path",
            );
        }
        let tls = &self.tls;
        if !tls.listen.is_empty() || tls.cert.is_some() || tls.key.is_some() {
            match (&tls.cert, &tls.key) {
                (Some(cert), Some(key)) => {
                    if let Err(e) = crate::tls::load(cert, key) {
                        check(false, "tls.cert", &e);
                    }
                }
                _ => check(false, "tls.cert", "TLS needs both cert and key (PEM files)"),
            }
        }
        if let Some(cluster) = &self.cluster {
            let word = |s: &str| {
                (1..=64).contains(&s.len())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            };
            check(
                (1..=16).contains(&cluster.nats.len())
                    && cluster.nats.iter().all(|u| {
                        u.len() <= 256 && ["nats://", "tls://"].iter().any(|p| u.starts_with(p))
                    }),
                "cluster.nats",
                "must be 1 to 16 URLs like \"nats://127.0.0.1:4222\"",
            );
            check(
                word(&cluster.name),
                "cluster.name",
                "must be 1 to 64 letters, digits, - or _",
            );
            check(
                word(&cluster.node_name()),
                "cluster.node",
                "must be 1 to 64 letters, digits, - or _",
            );
            let timeout = humantime::parse_duration(&cluster.node_timeout);
            check(
                timeout.is_ok_and(|t| (3..=300).contains(&t.as_secs())),
                "cluster.node_timeout",
                "must be a duration from 3s to 300s, e.g. \"15s\"",
            );
            for (key, path) in [
                ("cluster.credentials", &cluster.credentials),
                ("cluster.tls_ca", &cluster.tls_ca),
            ] {
                if let Some(path) = path {
                    check(path.is_absolute(), key, "must be an absolute path");
                }
            }
        }
        check(
            matches!(self.admin.mode.as_str(), "0600" | "0660"),
            "admin.mode",
            "must be \"0600\" or \"0660\"",
        );
        if let Some(socket) = &self.admin.socket {
            check(
                socket.is_absolute(),
                "admin.socket",
                "must be an absolute path",
            );
        }
        out
    }
}

/// Seconds in a day: the longest login, write and flood wait any setting allows.
const DAY: u64 = 86_400;

/// The innermost entry whose key or value covers `at`: (dotted key, span of its key).
fn locate(table: &DeTable, at: &Range<usize>, prefix: &str) -> Option<(String, Range<usize>)> {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        if let DeValue::Table(inner) = value.get_ref()
            && let Some(found) = locate(inner, at, &path)
        {
            return Some(found);
        }
        let covers = |s: Range<usize>| s.start <= at.start && at.start < s.end.max(s.start + 1);
        if covers(key.span()) || covers(value.span()) {
            return Some((path, key.span()));
        }
    }
    None
}

/// Removes the entry whose key has `span`, at any depth.
fn remove(table: &mut DeTable, span: &Range<usize>) {
    let hit = table.iter().find(|(key, _)| key.span() == *span);
    if let Some(name) = hit.map(|(key, _)| key.get_ref().to_string()) {
        table.remove(name.as_str());
        return;
    }
    for (_, value) in table.iter_mut() {
        if let DeValue::Table(inner) = value.get_mut() {
            remove(inner, span);
        }
    }
}

/// The span of the value at dotted `key`, if the file sets it.
fn find(table: &DeTable, key: &str) -> Option<Range<usize>> {
    let (head, rest) = key.split_once('.').unwrap_or((key, ""));
    let (_, value) = table.iter().find(|(k, _)| k.get_ref() == head)?;
    match (rest, value.get_ref()) {
        ("", _) => Some(value.span()),
        (rest, DeValue::Table(inner)) => find(inner, rest),
        _ => None,
    }
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
