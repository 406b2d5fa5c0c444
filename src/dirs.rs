//! Directories natterd finds in its environment or creates for itself: the admin socket's
//! and the state directory.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The environment variable `name`, if set and not empty.
pub fn env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// The first directory systemd passes in `name` (`RUNTIME_DIRECTORY`, `STATE_DIRECTORY`, ...),
/// which separates several entries with colons.
pub fn from_systemd(name: &str) -> Option<PathBuf> {
    let dirs = env(name)?;
    let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
    Some(first.unwrap_or_default())
}

/// Creates `dir` with `mode` if missing, and refuses one that someone else could swap
/// what natterd keeps there in: owned by a user other than natterd's or root, or writable
/// by its group or by others (as sshd's StrictModes does).
pub fn private(dir: &Path, mode: u32) -> anyhow::Result<()> {
    checked(dir, mode, false)
}

/// Like [`private`], but a sticky directory such as /tmp is accepted: others may add names
/// there but not remove or replace natterd's, and the socket's own mode guards it.
pub fn for_socket(dir: &Path, mode: u32) -> anyhow::Result<()> {
    checked(dir, mode, true)
}

fn checked(dir: &Path, mode: u32, sticky_ok: bool) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // The umask may have taken bits away; the mode asked for is the mode wanted.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot use {}", dir.display()))?;
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid && meta.uid() != 0 {
        bail!(
            "{} belongs to uid {}, not to natterd's uid {uid}; refusing to use it",
            dir.display(),
            meta.uid()
        );
    }
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !(sticky_ok && sticky) {
        bail!(
            "{} is writable by its group or by others (mode {:04o}); refusing to use it \
             (chmod go-w it)",
            dir.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}
