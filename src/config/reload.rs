//! What a reload compares: which keys changed, and which of them wait for a restart.

use super::Config;
use super::check::join;

/// Keys that only take effect at a restart: a reload reports them and keeps the old value.
pub const RESTART_KEYS: &[&str] = &[
    "server.listen",
    "server.state_dir",
    "admin.socket",
    "admin.mode",
    "log.stderr",
    "log.directory",
    "log.prefix",
    "log.rotation",
    "log.max_files",
    "metrics.listen",
    "tls.listen",
    "cluster.nats",
    "cluster.name",
    "cluster.node",
    "cluster.credentials",
    "cluster.tls_ca",
    "cluster.node_timeout",
];

impl Config {
    /// Dotted keys whose values differ between `self` and `other`, in order.
    pub fn changed_keys(&self, other: &Config) -> Vec<String> {
        let (a, b) = (flatten(self), flatten(other));
        let mut keys: Vec<String> = a
            .iter()
            .chain(&b)
            .filter(|(key, _)| a.get(*key) != b.get(*key))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// `self` with the keys in [`RESTART_KEYS`] (the one list of them) taken from `running`.
    pub fn keeping_restart_keys(self, running: &Config) -> Config {
        let (Ok(mut new), Ok(old)) = (toml::Table::try_from(&self), toml::Table::try_from(running))
        else {
            return self;
        };
        for key in RESTART_KEYS {
            let (table, name) = key.split_once('.').unwrap_or(("", key));
            let kept = old.get(table).and_then(|t| t.get(name)).cloned();
            if let Some(toml::Value::Table(section)) = new.get_mut(table) {
                match kept {
                    Some(value) => section.insert(name.to_owned(), value),
                    None => section.remove(name),
                };
            }
        }
        toml::Value::Table(new).try_into().unwrap_or(self)
    }
}

/// Every leaf of the config as (dotted key, TOML value).
fn flatten(config: &Config) -> std::collections::BTreeMap<String, toml::Value> {
    fn walk(
        prefix: &str,
        table: &toml::Table,
        out: &mut std::collections::BTreeMap<String, toml::Value>,
    ) {
        for (key, value) in table {
            let path = join(prefix, key);
            match value {
                toml::Value::Table(inner) => walk(&path, inner, out),
                leaf => {
                    out.insert(path, leaf.clone());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if let Ok(table) = toml::Table::try_from(config) {
        walk("", &table, &mut out);
    }
    out
}
