//! How a session ends: the reasons, as logged, and which of them close cleanly.

use std::io;

use crate::cause::{Dropped, Refused};
use crate::outbox::Close;

/// Why a client went away, as logged.
#[derive(Debug)]
pub(super) enum Leave {
    /// Typed `/quit`.
    Quit,
    /// Closed the connection.
    Closed,
    /// The connection failed.
    Error(io::Error),
    /// The server ended it (queue overflow or a timeout); counted by cause.
    Dropped(Dropped),
    /// An operator kicked them.
    Kicked,
    /// An operator banned them, or their nickname is banned.
    Banned,
    /// The server shut down.
    Shutdown,
    /// Turned away after it connected (a PROXY header from an untrusted address).
    Refused(Refused),
}

impl From<Close> for Leave {
    fn from(close: Close) -> Leave {
        match close {
            Close::Kicked => Leave::Kicked,
            Close::Banned => Leave::Banned,
            Close::Shutdown => Leave::Shutdown,
        }
    }
}

impl Leave {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Leave::Quit => "quit",
            Leave::Closed => "closed",
            Leave::Error(_) => "error",
            Leave::Dropped(cause) => cause.name(),
            Leave::Kicked => "kicked",
            Leave::Banned => "banned",
            Leave::Shutdown => "shutdown",
            Leave::Refused(cause) => cause.name(),
        }
    }

    /// Whether the connection ends with our last lines written, so a clean close matters.
    pub(super) fn closes_cleanly(&self) -> bool {
        !matches!(
            self,
            Leave::Error(_) | Leave::Dropped(Dropped::SendQueueFull | Dropped::WriteTimeout)
        )
    }
}

/// A peer going away mid-write or mid-read is an ordinary close, not an error.
pub(super) fn io_leave(e: io::Error) -> Leave {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Leave::Closed,
        _ => Leave::Error(e),
    }
}
