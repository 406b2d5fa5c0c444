//! Bans and mutes: what they match, when they end, and the file that keeps them across
//! restarts.
//!
//! This module is the rules themselves (pure); [`store`] keeps them in a file.

mod store;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{nick, sanitize};
pub use store::{FILE_NAME, Moderation, SharedRules};

/// Longest nickname a ban or mute may name (the longest `max_nick_len` allows).
const MAX_NICK: usize = 64;
/// The longest a ban or mute may be set for; longer is refused, so no end time can
/// overflow. "Until lifted" has no end at all.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 86_400);

/// What a ban or mute applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    /// An address (a range of one) or a CIDR range, IPv4 or IPv6.
    Net(IpNet),
    /// A nickname, matched as look-alikes match: `key` is its [`nick::key`], computed once,
    /// since every chat line is checked against every mute.
    Nick {
        /// As the operator wrote it (cleaned).
        name: String,
        /// Its [`nick::key`].
        key: String,
    },
}

impl Target {
    /// Whether `self` and `other` name the same thing (so a new rule replaces the old).
    pub fn same(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Net(a), Target::Net(b)) => a == b,
            (Target::Nick { key: a, .. }, Target::Nick { key: b, .. }) => a == b,
            _ => false,
        }
    }

    /// Whether this is a nickname whose key is `key`.
    fn is_nick(&self, key: &str) -> bool {
        matches!(self, Target::Nick { key: k, .. } if k == key)
    }

    /// A nickname target.
    pub fn nick(name: String) -> Target {
        let key = nick::key(&name);
        Target::Nick { name, key }
    }

    /// Whether this is a range holding `ip`. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`,
    /// as an IPv6 listener sees IPv4 clients) match IPv4 ranges, and IPv4 addresses match
    /// IPv6 ranges that hold their mapped form (`::/0` holds everyone).
    pub fn holds(&self, ip: IpAddr) -> bool {
        let Target::Net(net) = self else {
            return false;
        };
        let ip = ip.to_canonical();
        net.contains(&ip)
            || matches!(ip, IpAddr::V4(v4) if net.contains(&IpAddr::V6(v4.to_ipv6_mapped())))
    }
}

/// An address range in its one canonical form: an IPv4-mapped IPv6 range of /96 or
/// narrower (`::ffff:127.0.0.0/104`) is the IPv4 range it maps (`127.0.0.0/8`), with its
/// host bits cleared (`10.1.2.3/8` is `10.0.0.0/8`). The same at a ban and at a load.
fn canonical(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped.trunc());
    }
    net.trunc()
}

/// Whether `text` is written like an address or a range (digits and dots, or hex digits
/// and colons), so that one that does not parse is an error, not a nickname.
fn looks_like_address(text: &str) -> bool {
    let (addr, _) = text.split_once('/').unwrap_or((text, ""));
    let v4 = addr.contains('.') && addr.chars().all(|c| c.is_ascii_digit() || c == '.');
    let v6 = addr.contains(':')
        && addr
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    v4 || v6 || (text.contains('/') && addr.chars().all(|c| c.is_ascii_digit()))
}

impl FromStr for Target {
    type Err = String;

    /// An address, a CIDR range, or else a nickname.
    fn from_str(text: &str) -> Result<Target, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Target::Net(canonical(IpNet::from(ip))));
        }
        if let Ok(net) = text.parse::<IpNet>() {
            return Ok(Target::Net(canonical(net)));
        }
        if looks_like_address(text) {
            let what = if text.contains('/') {
                "address range"
            } else {
                "address"
            };
            return Err(format!("not a valid {what}: {text}"));
        }
        if text.is_empty() {
            return Err("empty target: give an address, a range or a nickname".into());
        }
        // Cleaned as a nickname typed at the prompt is, so the rule holds what users see.
        let cleaned = sanitize::clean(text.as_bytes());
        let nick = nick::visible(&cleaned);
        nick::validate(&nick, MAX_NICK)
            .map_err(|e| format!("not an address, range or valid nickname ({e}): {text}"))?;
        Ok(Target::nick(nick.into_owned()))
    }
}

impl TryFrom<String> for Target {
    type Error = String;
    fn try_from(text: String) -> Result<Target, String> {
        text.parse()
    }
}

impl From<Target> for String {
    fn from(target: Target) -> String {
        target.to_string()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Target::Net(net) => write!(f, "{net}"),
            Target::Nick { name, .. } => f.write_str(name),
        }
    }
}

/// One ban or mute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Who it applies to.
    pub target: Target,
    /// Shown to the user it stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The operator's uid, from the admin socket's peer credentials.
    pub set_by: u32,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// When it ends by itself; None: when lifted.
    #[serde(default)]
    pub expires: Option<DateTime<Utc>>,
}

impl Rule {
    /// Whether it still applies at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expires.is_none_or(|end| end > now)
    }

    /// ` (until 2026-11-26 17:30:00 UTC)`, or nothing for a rule without an end.
    pub fn until(&self) -> String {
        match self.expires {
            Some(end) => format!(" (until {})", end.format("%Y-%m-%d %H:%M:%S UTC")),
            None => String::new(),
        }
    }

    /// `you are banned: REASON (until TIME)`: what a banned client is told.
    pub fn banned_text(&self) -> String {
        format!(
            "you are banned{}{}",
            reason_suffix(&self.reason),
            self.until()
        )
    }

    /// `you are muted (until TIME)`: what a muted user is told when a message is refused.
    pub fn muted_text(&self) -> String {
        format!("you are muted{}", self.until())
    }

    /// `you are muted: REASON (until TIME)`: what a user is told when muted.
    pub fn muted_notice(&self) -> String {
        format!(
            "you are muted{}{}",
            reason_suffix(&self.reason),
            self.until()
        )
    }
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

/// Every ban and mute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Addresses, ranges and nicknames that may not connect or log in.
    #[serde(default)]
    pub bans: Vec<Rule>,
    /// Nicknames that may read but not send (their targets are always nicknames).
    #[serde(default)]
    pub mutes: Vec<Rule>,
}

impl Rules {
    /// The ban in force at `now` on an address, if any.
    pub fn ban_on_addr(&self, ip: IpAddr, now: DateTime<Utc>) -> Option<&Rule> {
        self.bans
            .iter()
            .find(|b| b.active(now) && b.target.holds(ip))
    }

    /// The ban in force at `now` on the nickname whose key is `key`, if any.
    pub fn ban_on_nick(&self, key: &str, now: DateTime<Utc>) -> Option<&Rule> {
        self.bans
            .iter()
            .find(|b| b.active(now) && b.target.is_nick(key))
    }

    /// The mute in force at `now` on the nickname whose key is `key`, if any.
    pub fn mute_on(&self, key: &str, now: DateTime<Utc>) -> Option<&Rule> {
        self.mutes
            .iter()
            .find(|m| m.active(now) && m.target.is_nick(key))
    }

    /// Takes out every rule that has ended by `now`; returns them as (bans, mutes).
    pub fn purge(&mut self, now: DateTime<Utc>) -> (Vec<Rule>, Vec<Rule>) {
        let ended = |list: &mut Vec<Rule>| {
            let (keep, gone) = std::mem::take(list)
                .into_iter()
                .partition(|r| r.active(now));
            *list = keep;
            gone
        };
        (ended(&mut self.bans), ended(&mut self.mutes))
    }
}

/// Puts `rule` in `list`, replacing a rule on the same target.
pub fn set(list: &mut Vec<Rule>, rule: Rule) {
    list.retain(|r| !r.target.same(&rule.target));
    list.push(rule);
}

/// Takes the rule on `target` out of `list`.
pub fn remove(list: &mut Vec<Rule>, target: &Target) -> Option<Rule> {
    let at = list.iter().position(|r| r.target.same(target))?;
    Some(list.remove(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn rule(target: &str, expires: Option<DateTime<Utc>>) -> Rule {
        Rule {
            target: target.parse().unwrap(),
            reason: Some("spam".into()),
            set_by: 0,
            set_at: Utc::now(),
            expires,
        }
    }

    #[test]
    fn targets_parse_as_address_range_or_nickname() {
        let t = |s: &str| s.parse::<Target>().map(|t| t.to_string());
        assert_eq!(t("192.0.2.7"), Ok("192.0.2.7".into()));
        assert_eq!(t("192.0.2.7/24"), Ok("192.0.2.0/24".into()));
        assert_eq!(t("2001:db8::1"), Ok("2001:db8::1".into()));
        assert_eq!(t("2001:db8:1::/48"), Ok("2001:db8:1::/48".into()));
        assert_eq!(t("::ffff:192.0.2.7"), Ok("192.0.2.7".into()));
        assert_eq!(t("Alice"), Ok("Alice".into()));
        assert!(t("10.0.0.0/33").is_err());
        assert!(t("two words").is_err());
        assert!(t("").is_err());
        assert!(t("/etc").is_err());
    }

    #[test]
    fn mapped_ranges_are_ipv4_ranges_and_bad_addresses_are_no_nicknames() {
        let t = |s: &str| s.parse::<Target>().map(|t| t.to_string());
        assert_eq!(t("::ffff:127.0.0.5/128"), Ok("127.0.0.5".into()));
        assert_eq!(t("::ffff:127.0.0.0/104"), Ok("127.0.0.0/8".into()));
        assert_eq!(t("::FFFF:7f00:1/120"), Ok("127.0.0.0/24".into()));
        assert_eq!(t("::ffff:0:0/96"), Ok("0.0.0.0/0".into()));
        for bad in [
            "10.0.0.256",
            "127.0.0.300/24",
            "1.2.3",
            "1::2::3",
            "12/8",
            "1.2.3.4/",
        ] {
            let err = t(bad).unwrap_err();
            assert!(err.starts_with("not a valid address"), "{bad}: {err}");
        }
        let mapped: Target = "::ffff:127.0.0.0/104".parse().unwrap();
        assert!(mapped.holds("127.9.9.9".parse().unwrap()));
        assert!(mapped.holds("::ffff:127.0.0.1".parse().unwrap()));
        let everyone: Target = "::/0".parse().unwrap();
        assert!(everyone.holds("192.0.2.1".parse().unwrap()));
        // What is saved reads back as the same rule.
        let json = serde_json::to_string(&mapped).unwrap();
        assert_eq!(serde_json::from_str::<Target>(&json).unwrap(), mapped);
    }

    #[test]
    fn ranges_match_v4_v6_and_mapped_addresses() {
        let net: Target = "10.1.0.0/16".parse().unwrap();
        assert!(net.holds("10.1.200.3".parse().unwrap()));
        assert!(net.holds("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.holds("10.2.0.1".parse().unwrap()));
        let v6: Target = "2001:db8::/32".parse().unwrap();
        assert!(v6.holds("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.holds("2001:db9::1".parse().unwrap()));
        assert!(!v6.holds("10.1.0.1".parse().unwrap()));
        let one: Target = "::1".parse().unwrap();
        assert!(one.holds("::1".parse().unwrap()));
        assert!(!one.holds("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn lookups_skip_ended_rules_and_match_look_alikes() {
        let now = Utc::now();
        let mut rules = Rules::default();
        set(&mut rules.bans, rule("bob", None));
        set(
            &mut rules.bans,
            rule("10.0.0.0/8", Some(now - TimeDelta::seconds(1))),
        );
        set(
            &mut rules.mutes,
            rule("carol", Some(now + TimeDelta::minutes(5))),
        );
        assert!(rules.ban_on_nick(&nick::key("ＢＯＢ"), now).is_some());
        assert!(
            rules
                .ban_on_addr("10.0.0.1".parse().unwrap(), now)
                .is_none()
        );
        assert!(rules.mute_on(&nick::key("Carol"), now).is_some());
        assert!(
            rules
                .mute_on(&nick::key("Carol"), now + TimeDelta::minutes(6))
                .is_none()
        );
        let (bans, mutes) = rules.purge(now);
        assert_eq!((bans.len(), mutes.len()), (1, 0));
        // Setting the same target again replaces it.
        set(
            &mut rules.bans,
            rule("BOB", Some(now + TimeDelta::hours(1))),
        );
        assert_eq!(rules.bans.len(), 1);
        assert!(remove(&mut rules.bans, &"bob".parse().unwrap()).is_some());
        assert!(rules.bans.is_empty());
    }

    #[test]
    fn lines_users_see() {
        let mut r = rule("bob", None);
        assert_eq!(r.banned_text(), "you are banned: spam");
        assert_eq!(r.muted_text(), "you are muted");
        r.reason = None;
        r.expires = Some("2026-11-26T17:30:00Z".parse().unwrap());
        assert_eq!(
            r.banned_text(),
            "you are banned (until 2026-11-26 17:30:00 UTC)"
        );
        assert_eq!(
            r.muted_text(),
            "you are muted (until 2026-11-26 17:30:00 UTC)"
        );
    }
}
