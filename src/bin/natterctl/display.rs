//! natterctl's human-readable output: `list` as a table, `stats` as `key: value` lines.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use natter::admin::proto::{
    BanReply, BansReply, ListReply, MuteReply, ReloadReply, RoomsReply, StatsReply,
};
use natter::moderation::Rule;
use natter::sanitize;

/// `text` safe for an operator's terminal: line breaks stay, and every control, bidi or
/// invisible character (say, from a hand-edited ban file or an old nickname) is shown as a
/// `\u{...}` escape instead of acting on the terminal or hiding in the output.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && (c.is_control() || sanitize::is_hidden(c)) {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `list` as an aligned table, one connection per row.
pub fn list_table(reply: &ListReply) -> String {
    let header = [
        "ID", "NICK", "ROOM", "PEER", "SINCE", "IDLE", "IGNORE", "LINES", "IN", "OUT", "QUEUE",
        "SKIPPED", "NODE",
    ];
    let rows: Vec<[String; 13]> = reply
        .connections
        .iter()
        .map(|c| {
            [
                c.id.to_string(),
                c.nick.clone().unwrap_or_else(|| "-".into()),
                c.room.clone().unwrap_or_else(|| "-".into()),
                c.peer.clone(),
                c.since.clone(),
                format!("{}s", c.idle_secs),
                if c.ignoring { "yes" } else { "no" }.into(),
                c.lines.to_string(),
                c.bytes_in.to_string(),
                c.bytes_out.to_string(),
                c.queue_bytes.to_string(),
                c.skipped.to_string(),
                c.node.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// `rooms` as a table, most users first.
pub fn rooms_table(reply: &RoomsReply) -> String {
    let rows: Vec<[String; 4]> = reply
        .rooms
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.users.to_string(),
                r.kind.clone(),
                r.topic.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ROOM", "USERS", "KIND", "TOPIC"], &rows)
}

/// Rows under a header, each column as wide as its widest cell.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn when(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `ban`'s outcome in a line or two.
pub fn ban_summary(reply: &BanReply) -> String {
    let mut out = match reply.expires {
        Some(_) => format!("banned {} until {}\n", reply.target, when(reply.expires)),
        None => format!("banned {} until lifted\n", reply.target),
    };
    if !reply.kicked.is_empty() {
        let _ = writeln!(out, "disconnected: {}", reply.kicked.join(", "));
    }
    out
}

/// `mute`'s outcome in a line.
pub fn mute_summary(reply: &MuteReply) -> String {
    let until = match reply.expires {
        Some(_) => format!("until {}", when(reply.expires)),
        None => "until lifted".to_owned(),
    };
    let online = if reply.online {
        "online, told"
    } else {
        "not online"
    };
    format!("muted {} {until} ({online})\n", reply.nick)
}

/// `bans` as two tables: bans, then mutes.
pub fn bans_table(reply: &BansReply) -> String {
    let rows = |rules: &[Rule]| -> Vec<[String; 5]> {
        rules
            .iter()
            .map(|r| {
                [
                    r.target.to_string(),
                    r.reason.clone().unwrap_or_else(|| "-".into()),
                    r.set_by.to_string(),
                    when(Some(r.set_at)),
                    when(r.expires),
                ]
            })
            .collect()
    };
    let mut out = String::new();
    if reply.bans.is_empty() {
        out.push_str("no bans\n");
    } else {
        let header = ["BANNED", "REASON", "SET BY", "SET AT", "EXPIRES"];
        out.push_str(&table(&header, &rows(&reply.bans)));
    }
    out.push('\n');
    if reply.mutes.is_empty() {
        out.push_str("no mutes\n");
    } else {
        let header = ["MUTED", "REASON", "SET BY", "SET AT", "EXPIRES"];
        out.push_str(&table(&header, &rows(&reply.mutes)));
    }
    out
}

/// `stats` as `key: value` lines.
pub fn stats_lines(s: &StatsReply) -> String {
    let by_cause = |map: &std::collections::BTreeMap<String, u64>| {
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(" ")
        }
    };
    let lines = [
        ("version", s.version.clone()),
        ("uptime_secs", s.uptime_secs.to_string()),
        ("listen", s.listen.join(" ")),
        ("users_online", s.users_online.to_string()),
        ("peak_users", s.peak_users.to_string()),
        ("rooms", s.rooms.to_string()),
        ("deliveries", s.deliveries.to_string()),
        ("connections", s.connections.to_string()),
        ("accepted", s.accepted.to_string()),
        ("lines_relayed", s.lines_relayed.to_string()),
        ("bytes_in", s.bytes_in.to_string()),
        ("bytes_out", s.bytes_out.to_string()),
        ("kicks", s.kicks.to_string()),
        ("refused", by_cause(&s.refused)),
        ("dropped", by_cause(&s.dropped)),
        ("skipped_messages", s.skipped_messages.to_string()),
        ("log_lines_dropped", s.log_lines_dropped.to_string()),
        ("log_events_suppressed", s.log_events_suppressed.to_string()),
        ("bans", s.bans.to_string()),
        ("mutes", s.mutes.to_string()),
        ("muted_messages", s.muted_messages.to_string()),
        ("reports", s.reports.to_string()),
    ];
    let mut out: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    if let Some(c) = &s.cluster {
        let nodes = if c.nodes.is_empty() {
            "none".to_owned()
        } else {
            c.nodes.join(", ")
        };
        let _ = writeln!(out, "cluster.node: {}", c.node);
        let _ = writeln!(out, "cluster.connected: {}", c.connected);
        let _ = writeln!(out, "cluster.server: {}", c.server);
        let _ = writeln!(out, "cluster.other_nodes: {nodes}");
        let _ = writeln!(out, "cluster.dropped: {}", c.dropped);
        let _ = writeln!(out, "cluster.missed: {}", c.missed);
        let _ = writeln!(out, "cluster.bad_messages: {}", c.bad_messages);
    }
    out
}

/// What a reload did, in words.
pub fn reload_summary(r: &ReloadReply) -> String {
    let list = |keys: &[String]| {
        if keys.is_empty() {
            "none".to_owned()
        } else {
            keys.join(", ")
        }
    };
    format!(
        "configuration reloaded\nchanged: {}\nneeds a restart: {}\n",
        list(&r.changed),
        list(&r.restart_needed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter::admin::proto::Connection;

    #[test]
    fn table_columns_line_up() {
        let conn = |id, nick: Option<&str>| Connection {
            id,
            nick: nick.map(Into::into),
            room: nick.map(|_| "#lobby".into()),
            node: None,
            peer: "127.0.0.1:40000".into(),
            since: "2026-01-01T00:00:00Z".into(),
            idle_secs: 5,
            ignoring: id == 2,
            lines: 3,
            bytes_in: 100,
            bytes_out: 2000,
            queue_bytes: 0,
            skipped: 0,
        };
        let table = list_table(&ListReply {
            connections: vec![conn(1, Some("alice")), conn(2, None)],
        });
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NICK   ROOM    PEER"), "{table}");
        assert!(
            lines[1].starts_with("1   alice  #lobby  127.0.0.1:40000"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("2   -      -       127.0.0.1:40000"),
            "{table}"
        );
        let col = lines[0].find("IGNORE").unwrap();
        assert_eq!(&lines[2][col..col + 3], "yes");
    }

    #[test]
    fn terminal_controls_are_shown_as_escapes() {
        assert_eq!(
            shown("a\u{202e}b\x1b[2Jc\u{ad}d\ne"),
            "a\\u{202e}b\\u{001b}[2Jc\\u{00ad}d\ne"
        );
        assert_eq!(shown("plain"), "plain");
    }

    #[test]
    fn reload_in_words() {
        let r = ReloadReply {
            changed: vec!["server.motd".into()],
            restart_needed: vec![],
        };
        assert_eq!(
            reload_summary(&r),
            "configuration reloaded\nchanged: server.motd\nneeds a restart: none\n"
        );
    }
}
