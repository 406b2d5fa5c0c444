//! The file that keeps bans and mutes across restarts, and the snapshot in force.
//!
//! The rules in force are an immutable snapshot behind an `Arc`: every connection and every
//! chat line reads it without waiting, while a change (rare, from natterctl) builds a new
//! snapshot, writes it to disk and only then puts it in force, so what natterd enforces is
//! always what the file says.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use anyhow::Context;
use chrono::Utc;

use super::Rules;
use crate::dirs;

/// The file in the state directory that holds bans and mutes.
pub const FILE_NAME: &str = "bans.json";

/// Where a cluster keeps the rules instead of the file (see [`crate::cluster`]).
pub trait SharedRules: Send + Sync + std::fmt::Debug {
    /// Stores `rules` if the shared copy is still at `revision`; returns the new revision.
    /// `Ok(None)`: someone changed it first.
    fn store(&self, rules: &Rules, revision: u64) -> io::Result<Option<u64>>;
    /// The shared copy now and its revision (0 and no rules if there is none yet).
    fn load(&self) -> io::Result<(Rules, u64)>;
}

/// The rules in force and the file that keeps them.
#[derive(Debug)]
pub struct Moderation {
    path: PathBuf,
    current: RwLock<Arc<Rules>>,
    /// Held while a change is written, so changes go to disk one at a time.
    writing: Mutex<()>,
    /// In a cluster: the shared copy, and the revision the rules in force came from.
    shared: std::sync::OnceLock<Box<dyn SharedRules>>,
    revision: std::sync::atomic::AtomicU64,
}

impl Moderation {
    /// Loads the rules from `dir` (created 0700 if missing, refused if someone else owns it),
    /// dropping ended ones. A file
    /// that is there but cannot be read or understood is an error, never an empty list.
    pub fn open(dir: &Path) -> anyhow::Result<Moderation> {
        dirs::private(dir, 0o700).context("cannot use the state directory")?;
        let path = dir.join(FILE_NAME);
        let mut rules = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Rules>(&text).with_context(|| {
                format!(
                    "{} is corrupt; fix or remove it (bans and mutes are kept there)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Rules::default(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        rules.purge(Utc::now());
        Ok(Moderation {
            path,
            current: RwLock::new(Arc::new(rules)),
            writing: Mutex::new(()),
            shared: std::sync::OnceLock::new(),
            revision: Default::default(),
        })
    }

    /// No rules, and nowhere to save any: for tests that never change them.
    #[cfg(test)]
    pub(crate) fn unsaved() -> Moderation {
        Moderation {
            path: PathBuf::from("/nonexistent/bans.json"),
            current: RwLock::default(),
            writing: Mutex::new(()),
            shared: std::sync::OnceLock::new(),
            revision: Default::default(),
        }
    }

    /// Where the rules are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `change` to a copy of the rules; if it returns `Some`, writes the copy to
    /// disk and puts it in force. If writing fails, nothing changes.
    ///
    /// In a cluster the copy goes to the shared store instead, if nobody changed it since
    /// this node last saw it; otherwise the change is made again on the newer rules.
    pub fn update<T>(&self, change: impl Fn(&mut Rules) -> Option<T>) -> io::Result<Option<T>> {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(shared) = self.shared.get() else {
            let mut rules = (*self.rules()).clone();
            let Some(result) = change(&mut rules) else {
                return Ok(None);
            };
            save(&self.path, &rules)?;
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rules);
            return Ok(Some(result));
        };
        for _ in 0..8 {
            let revision = self.revision.load(std::sync::atomic::Ordering::Acquire);
            let mut rules = (*self.rules()).clone();
            let Some(result) = change(&mut rules) else {
                return Ok(None);
            };
            match shared.store(&rules, revision)? {
                Some(new) => {
                    self.put_in_force(rules, new);
                    return Ok(Some(result));
                }
                None => {
                    let (latest, revision) = shared.load()?;
                    self.put_in_force(latest, revision);
                }
            }
        }
        Err(io::Error::other(
            "the shared rules kept changing; try again",
        ))
    }

    /// Keeps the rules in a cluster's shared store from now on.
    pub fn share(&self, shared: Box<dyn SharedRules>) {
        let _ = self.shared.set(shared);
    }

    /// Puts `rules`, at shared `revision`, in force (a change another node made); returns
    /// the rules that were in force before. An older revision than the one in force is
    /// ignored (and the rules in force returned).
    pub fn put_in_force(&self, rules: Rules, revision: u64) -> Arc<Rules> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let before = current.clone();
        let known = self.revision.load(std::sync::atomic::Ordering::Acquire);
        if revision >= known {
            *current = Arc::new(rules);
            self.revision
                .store(revision, std::sync::atomic::Ordering::Release);
        }
        before
    }
}

/// Writes `rules` to `path` atomically: a new temporary file (a fresh random name, created
/// exclusively and 0600, so nothing planted in the directory is followed or overwritten),
/// fsync, rename, fsync of the directory. A crash leaves either the old file or the new
/// one, never half of one.
fn save(path: &Path, rules: &Rules) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut text = serde_json::to_string_pretty(rules).map_err(io::Error::other)?;
    text.push('\n');
    let mut temp = tempfile::Builder::new()
        .prefix(".bans.")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    // On failure the temporary file is removed when `temp` drops.
    temp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moderation::{Rule, set};

    fn rule(target: &str) -> Rule {
        Rule {
            target: target.parse().unwrap(),
            reason: None,
            set_by: 0,
            set_at: Utc::now(),
            expires: None,
        }
    }

    #[test]
    fn changes_are_saved_and_reloaded_and_corruption_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let m = Moderation::open(&state).unwrap();
        assert!(m.rules().bans.is_empty());
        let changed = m.update(|r| {
            set(&mut r.bans, rule("192.0.2.0/24"));
            Some(())
        });
        assert!(changed.unwrap().is_some());
        assert_eq!(m.update(|_| None::<()>).unwrap(), None);
        let again = Moderation::open(&state).unwrap();
        assert_eq!(again.rules().bans, m.rules().bans);
        std::fs::write(state.join(FILE_NAME), "{\"bans\": [").unwrap();
        let error = format!("{:#}", Moderation::open(&state).unwrap_err());
        assert!(error.contains("bans.json is corrupt"), "{error}");
    }

    #[test]
    fn ended_rules_are_dropped_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut ended = rule("192.0.2.1");
        ended.expires = Some(Utc::now() - chrono::TimeDelta::seconds(1));
        let rules = Rules {
            bans: vec![ended, rule("192.0.2.2")],
            mutes: vec![],
        };
        save(&dir.path().join(FILE_NAME), &rules).unwrap();
        let loaded = Moderation::open(dir.path()).unwrap().rules();
        assert_eq!(loaded.bans, vec![rules.bans[1].clone()]);
    }
}
