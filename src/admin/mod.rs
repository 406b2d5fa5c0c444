//! The admin socket: a Unix stream socket where natterctl (or socat) sends one JSON request
//! per line; see [`proto`]. Access is by file permissions on the socket and its directory.

pub mod client;
pub mod proto;
mod watch;

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{Instrument, info, info_span, warn};

use crate::config::Config;
use crate::daemon::Daemon;
use crate::dirs;
use crate::hub::{RoomName, room};
use crate::sanitize;
use proto::{AdminCommand, Failure, Framed, ListReply, Read, RoomsReply, TopicReply, WallReply};

/// Admin connections served at once; more wait for a free place.
const MAX_CONNECTIONS: usize = 8;
/// An admin connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// An admin connection that takes no bytes of a reply for this long is closed, so one that
/// sends requests and never reads cannot keep its place.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// `watch` connections at once. A watcher gives its place among [`MAX_CONNECTIONS`] back,
/// so watchers left running never lock operators out.
const MAX_WATCHERS: usize = 16;

/// Where the admin socket lives when `[admin] socket` is unset: systemd's runtime directory,
/// else the user's runtime directory, else a per-user directory in /tmp.
pub fn default_socket_path() -> PathBuf {
    if let Some(dir) = dirs::from_systemd("RUNTIME_DIRECTORY") {
        return dir.join("admin.sock");
    }
    if let Some(dir) = dirs::env("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("natter/admin.sock");
    }
    let uid = rustix::process::getuid().as_raw();
    PathBuf::from(format!("/tmp/natter-{uid}/admin.sock"))
}

/// The admin socket path `config` asks for.
pub fn socket_path(config: &Config) -> PathBuf {
    config
        .admin
        .socket
        .clone()
        .unwrap_or_else(default_socket_path)
}

/// The bound admin socket. Dropping it removes the socket file, if it is still ours.
#[derive(Debug)]
pub struct AdminSocket {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the file we created, to tell it from a successor's.
    identity: (u64, u64),
}

/// Binds the admin socket at `path` with permissions `mode`.
///
/// A live natterd already answering there is an error, a dead socket left by a crash is
/// replaced, and anything else at the path is refused. The socket is bound under a temporary
/// name and renamed into place once its permissions are set, so it is never reachable with
/// looser ones.
pub fn bind(path: &Path, mode: u32) -> anyhow::Result<AdminSocket> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.context("the admin socket path needs a directory")?;
    // A directory made here lets the socket's group in when the socket does (0660).
    let dir_mode = if mode & 0o060 != 0 { 0o750 } else { 0o700 };
    dirs::for_socket(dir, dir_mode)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => bail!(
                    "another natterd is already running (admin socket {})",
                    path.display()
                ),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    warn!(path = %path.display(), "removing stale admin socket");
                    std::fs::remove_file(path)
                        .with_context(|| format!("cannot remove stale {}", path.display()))?;
                }
                Err(e) => bail!("cannot check admin socket {}: {e}", path.display()),
            }
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot check admin socket {}: {e}", path.display()),
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)
        .with_context(|| format!("cannot create admin socket {}", temp.display()))?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::rename(&temp, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    let meta = match placed {
        Ok(meta) => meta,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            bail!("cannot put admin socket at {}: {e}", path.display());
        }
    };
    Ok(AdminSocket {
        listener,
        path: path.to_owned(),
        identity: (meta.dev(), meta.ino()),
    })
}

impl AdminSocket {
    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves admin connections until a shutdown is requested.
    pub async fn serve(self, daemon: Arc<Daemon>) {
        let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let watchers = Arc::new(Semaphore::new(MAX_WATCHERS));
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = daemon.shutdown_requested() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Waiting for a place gives way to a shutdown too.
            let place = tokio::select! {
                place = places.clone().acquire_owned() => place,
                () = daemon.shutdown_requested() => return,
            };
            let Ok(place) = place else {
                return;
            };
            let (uid, pid) = match stream.peer_cred() {
                Ok(cred) => (cred.uid(), cred.pid().unwrap_or(0)),
                Err(_) => (u32::MAX, 0),
            };
            let span = info_span!("admin", uid, pid);
            let daemon = daemon.clone();
            let watchers = watchers.clone();
            tokio::spawn(
                async move {
                    info!("admin connection");
                    serve_connection(stream, &daemon, uid, place, &watchers).await;
                }
                .instrument(span),
            );
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Answers requests from operator `uid` until the connection closes or turns into a
/// `watch` stream. `place` is its place among the admin connections.
async fn serve_connection(
    stream: UnixStream,
    daemon: &Daemon,
    uid: u32,
    place: OwnedSemaphorePermit,
    watchers: &Arc<Semaphore>,
) {
    let mut framed = Framed::new(stream);
    loop {
        let Some((id, command)) = next_request(&mut framed, daemon).await else {
            return;
        };
        let name = match &command {
            Ok(command) => command.name(),
            Err(_) => "invalid",
        };
        let shutdown = match &command {
            Ok(AdminCommand::Shutdown { message }) => {
                Some(message.as_deref().map(clean).filter(|m| !m.is_empty()))
            }
            _ => None,
        };
        if let Ok(AdminCommand::Watch) = command {
            let Ok(watching) = watchers.clone().try_acquire_owned() else {
                let failure = Failure::new(
                    "too_many_watchers",
                    format!("{MAX_WATCHERS} watchers are running already"),
                );
                info!(
                    command = name,
                    outcome = "too_many_watchers",
                    "admin command"
                );
                if !reply(&mut framed, &proto::error_line(id, &failure)).await {
                    return;
                }
                continue;
            };
            info!(command = name, outcome = "ok", "admin command");
            drop(place);
            watch::stream(framed, daemon, id).await;
            drop(watching);
            return;
        }
        let result = command.and_then(|command| execute(daemon, command, uid));
        let line = match &result {
            Ok(data) => proto::ok_line(id, data),
            Err(failure) => proto::error_line(id, failure),
        };
        let outcome = result.as_ref().map_or_else(|f| f.code.as_str(), |_| "ok");
        info!(command = name, outcome, "admin command");
        if !reply(&mut framed, &line).await {
            return;
        }
        // The answer goes out before the drain begins.
        if let Some(message) = shutdown {
            daemon.request_shutdown(message);
        }
    }
}

/// The next request on `framed` with its `id`, or the failure to answer for it; None when
/// the connection is to end (closed, idle for [`IDLE_TIMEOUT`], or natterd shutting down).
async fn next_request(
    framed: &mut Framed<UnixStream>,
    daemon: &Daemon,
) -> Option<(Option<Value>, Result<AdminCommand, Failure>)> {
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(IDLE_TIMEOUT, framed.read_line()) => read,
            () = daemon.shutdown_requested() => return None,
        };
        return match read.ok()?.ok()? {
            Read::Closed => None,
            Read::TooLong => {
                let max = proto::MAX_LINE;
                let failure = Failure::new("too_long", format!("request over {max} bytes"));
                Some((None, Err(failure)))
            }
            Read::Line(line) if line.trim().is_empty() => continue,
            Read::Line(line) => Some(proto::parse_request(&line)),
        };
    }
}

/// Writes one reply line. False if the connection is to end: the peer is gone, or took no
/// bytes for [`WRITE_TIMEOUT`] (logged).
async fn reply(framed: &mut Framed<UnixStream>, line: &str) -> bool {
    match tokio::time::timeout(WRITE_TIMEOUT, framed.write_line(line)).await {
        Ok(written) => written.is_ok(),
        Err(_) => {
            warn!("admin connection closed: it does not read its replies");
            false
        }
    }
}

/// A room name from natterctl, checked like a user's `/join`.
fn room_name(text: &str) -> Result<RoomName, Failure> {
    RoomName::parse(text).map_err(|e| Failure::new("bad_room", format!("bad room name: {e}")))
}

fn no_such_room(name: &RoomName) -> Failure {
    Failure::new("not_found", format!("no such room: {}", name.shown))
}

/// Carries out one admin command from operator `uid`; the reply's fields as JSON.
fn execute(daemon: &Daemon, command: AdminCommand, uid: u32) -> Result<Value, Failure> {
    // Ban and mute reasons are cleaned where rules are made (`Daemon::ban`, `Daemon::mute`).
    let secs = |s: Option<u64>| s.map(Duration::from_secs);
    match command {
        AdminCommand::List { room } => {
            let mut connections = daemon.hub.connections();
            if let Some(room) = room {
                let name = room_name(&room)?;
                connections.retain(|c| {
                    c.room
                        .as_deref()
                        .and_then(|r| RoomName::parse(r).ok())
                        .is_some_and(|r| r.key == name.key)
                });
            }
            Ok(json(&ListReply { connections }))
        }
        AdminCommand::Rooms => Ok(json(&RoomsReply {
            rooms: daemon.hub.rooms(),
        })),
        AdminCommand::Topic { room, text } => {
            let name = room_name(&room)?;
            let topic = room::clean_text(&text.join(" ")).map_err(|_| {
                Failure::new(
                    "bad_request",
                    format!("topic too long (max {} bytes)", room::MAX_TEXT_BYTES),
                )
            })?;
            let shown = daemon
                .hub
                .set_topic(&name, topic.clone())
                .map_err(|_| no_such_room(&name))?;
            info!(
                room = &*shown,
                topic = topic.as_deref().unwrap_or(""),
                "topic set"
            );
            Ok(json(&TopicReply {
                room: shown.to_string(),
                topic: topic.map(|t| t.to_string()),
            }))
        }
        AdminCommand::Kick { nick, reason } => daemon.kick(&nick, reason, uid).map(|r| json(&r)),
        AdminCommand::Wall { room, text } => {
            let text = clean(&text.join(" "));
            if text.is_empty() {
                return Err(Failure::new("bad_request", "wall needs some text"));
            }
            let room = room.as_deref().map(room_name).transpose()?;
            let recipients = daemon
                .hub
                .wall(&text, room.as_ref())
                .map_err(|_| no_such_room(room.as_ref().expect("only a room is missing")))?
                as u64;
            Ok(json(&WallReply { recipients }))
        }
        AdminCommand::Stats => Ok(json(&daemon.report())),
        AdminCommand::Reload => daemon.reload().map(|reply| json(&reply)),
        AdminCommand::ReopenLogs => {
            daemon.logs.reopen();
            Ok(Value::Object(Default::default()))
        }
        AdminCommand::Shutdown { .. } | AdminCommand::Watch => {
            Ok(Value::Object(Default::default()))
        }
        AdminCommand::Ban {
            target,
            for_secs,
            reason,
        } => daemon
            .ban(&target, secs(for_secs), reason, uid)
            .map(|r| json(&r)),
        AdminCommand::Unban { target } => daemon.unban(&target, uid).map(|r| json(&r)),
        AdminCommand::Bans => Ok(json(&daemon.bans())),
        AdminCommand::Mute {
            nick,
            for_secs,
            reason,
        } => daemon
            .mute(&nick, secs(for_secs), reason, uid)
            .map(|r| json(&r)),
        AdminCommand::Unmute { nick } => daemon.unmute(&nick, uid).map(|r| json(&r)),
    }
}

fn json(data: &impl serde::Serialize) -> Value {
    serde_json::to_value(data).unwrap_or_default()
}

/// Operator text goes through the same cleaning as users' lines before anyone sees it.
fn clean(text: &str) -> String {
    sanitize::clean(text.as_bytes())
}
