//! natterctl's side of the admin socket: one request, one reply.

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::net::UnixStream;

use super::proto::{self, AdminCommand, Framed, Read};

/// Why no reply came.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached; the message says why and what to check.
    Unreachable(String),
    /// natterd did not answer in time, or closed without answering.
    NoAnswer(String),
}

/// Sends `command` to the natterd at `path` and returns its reply line, unparsed.
pub async fn request(
    path: &Path,
    command: &AdminCommand,
    timeout: Duration,
) -> Result<String, ClientError> {
    let shown = path.display();
    let exchange = async {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::Unreachable(unreachable(path, &e)))?;
        let mut framed = Framed::with_max(stream, proto::MAX_REPLY);
        let io_error = |e: io::Error| ClientError::NoAnswer(format!("talking to {shown}: {e}"));
        framed
            .write_line(&proto::request_line(command))
            .await
            .map_err(io_error)?;
        match framed.read_line().await.map_err(io_error)? {
            Read::Line(line) => Ok(line),
            Read::TooLong | Read::Closed => Err(ClientError::NoAnswer(format!(
                "natterd at {shown} closed the connection without answering"
            ))),
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::NoAnswer(format!(
            "no answer from natterd at {shown} within {} s",
            timeout.as_secs_f32()
        ))),
    }
}

/// Asks the natterd at `path` to `watch` and calls `each` with every line it sends: first
/// the answer (within `timeout`), then one event per line for as long as natterd sends them.
/// Returns when natterd closes the stream.
pub async fn watch(
    path: &Path,
    timeout: Duration,
    mut each: impl FnMut(&str),
) -> Result<(), ClientError> {
    let shown = path.display();
    let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
        .await
        .map_err(|_| ClientError::NoAnswer(format!("no answer from natterd at {shown}")))?
        .map_err(|e| ClientError::Unreachable(unreachable(path, &e)))?;
    let mut framed = Framed::with_max(stream, proto::MAX_REPLY);
    let io_error = |e: io::Error| ClientError::NoAnswer(format!("talking to {shown}: {e}"));
    framed
        .write_line(&proto::request_line(&AdminCommand::Watch))
        .await
        .map_err(io_error)?;
    let first = tokio::time::timeout(timeout, framed.read_line()).await;
    let mut next = match first {
        Ok(read) => read.map_err(io_error)?,
        Err(_) => {
            let message = format!(
                "no answer from natterd at {shown} within {} s",
                timeout.as_secs_f32()
            );
            return Err(ClientError::NoAnswer(message));
        }
    };
    loop {
        match next {
            Read::Line(line) => each(&line),
            Read::TooLong => {}
            Read::Closed => return Ok(()),
        }
        next = framed.read_line().await.map_err(io_error)?;
    }
}

fn unreachable(path: &Path, e: &io::Error) -> String {
    let path = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "cannot reach natterd: no admin socket at {path} (is natterd running, with this \
             configuration?)"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot reach natterd at {path}: permission denied (run as natterd's user, or set \
             [admin] mode = \"0660\" and join its group)"
        ),
        io::ErrorKind::ConnectionRefused => format!(
            "cannot reach natterd at {path}: nothing is listening (natterd is not running; \
             the socket is left over)"
        ),
        _ => format!("cannot reach natterd at {path}: {e}"),
    }
}
