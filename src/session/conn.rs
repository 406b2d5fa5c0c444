//! The byte side of a session: the transport, the output being written and its progress.
//!
//! The session above deals in lines and outbox events; this file is the only one that
//! touches the socket. A transport is anything [`Transport`] covers: plain TCP today, a TLS
//! or WebSocket stream later, without the chat logic changing.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::Instant;

/// Bytes read from the transport at a time.
pub(super) const READ_CHUNK: usize = 2048;
/// Bytes of queued output gathered into one write.
pub(super) const WRITE_CHUNK: usize = 16 * 1024;
/// How long a closing connection keeps reading (and discarding) so the close is clean.
const LINGER: Duration = Duration::from_secs(1);

/// What a session needs of a byte stream. Reads go through readiness and a buffer on the
/// caller's stack, so an idle connection holds no read buffer.
pub trait Transport: Send + 'static {
    /// Resolves when input (or its end) may be there.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is there without waiting; `WouldBlock` if nothing is.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Resolves when some output may be written.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Writes what fits without waiting; `WouldBlock` if nothing does.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// After the last line: ends the output and discards input for a moment, so that unread
    /// input does not turn the close into a reset that destroys the last line in flight.
    fn linger(&mut self) -> impl Future<Output = ()> + Send;
}

/// [`Transport`] for a tokio socket type with readiness methods of its own.
macro_rules! readiness_transport {
    ($socket:ty) => {
        impl Transport for $socket {
            fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$socket>::readable(self)
            }

            fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                <$socket>::try_read(self, buf)
            }

            fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$socket>::writable(self)
            }

            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$socket>::try_write(self, buf)
            }

            async fn linger(&mut self) {
                let _ = self.shutdown().await;
                let mut sink = [0; 1024];
                let deadline = Instant::now() + LINGER;
                for _ in 0..64 {
                    match tokio::time::timeout_at(deadline, self.read(&mut sink)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => break,
                    }
                }
            }
        }
    };
}

readiness_transport!(TcpStream);
// The session's end of a TLS connection's relay (see `crate::tls`).
readiness_transport!(UnixStream);

/// A transport and the output being written to it.
pub(super) struct Conn<T> {
    io: T,
    /// Output taken from the outbox, written from `written` on.
    output: Vec<u8>,
    written: usize,
    /// When output last made progress, for the write timeout.
    progress: Instant,
}

impl<T: Transport> Conn<T> {
    pub(super) fn new(io: T) -> Conn<T> {
        Conn {
            io,
            output: Vec::new(),
            written: 0,
            progress: Instant::now(),
        }
    }

    /// Whether all output so far is written.
    pub(super) fn idle(&self) -> bool {
        self.written == self.output.len()
    }

    /// The empty output buffer, to take the next lines into. Only while [`Conn::idle`].
    pub(super) fn refill(&mut self, now: Instant) -> &mut Vec<u8> {
        debug_assert!(self.idle());
        self.output.clear();
        self.written = 0;
        self.progress = now;
        &mut self.output
    }

    /// Whether nothing was taken to write.
    pub(super) fn is_empty(&self) -> bool {
        self.output.is_empty()
    }

    /// Gives the output buffer back while there is nothing to write, so an idle connection
    /// holds none.
    pub(super) fn release(&mut self) {
        if self.output.is_empty() && self.output.capacity() > 0 {
            self.output = Vec::new();
        }
    }

    /// Writes what the transport takes now, without waiting; returns how much.
    pub(super) fn try_flush(&mut self) -> io::Result<usize> {
        match self.io.try_write(&self.output[self.written..]) {
            Ok(n) => {
                self.written += n;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Waits until the transport takes more output and writes it; returns how much, for
    /// [`Conn::advance`]. Borrows the connection only to read, so the session can wait for
    /// input at the same time.
    pub(super) async fn write_some(&self) -> io::Result<usize> {
        loop {
            self.io.writable().await?;
            match self.io.try_write(&self.output[self.written..]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
        }
    }

    /// Records `n` bytes written by [`Conn::write_some`].
    pub(super) fn advance(&mut self, n: usize) {
        self.written += n;
        self.progress = Instant::now();
    }

    /// When the write timeout of `limit` runs out, while output waits.
    pub(super) fn write_deadline(&self, limit: Option<Duration>) -> Option<Instant> {
        (!self.idle())
            .then_some(limit)
            .flatten()
            .map(|t| self.progress + t)
    }

    /// Resolves when input (or its end) may be there.
    pub(super) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Reads what input is there; `WouldBlock` if none. The buffer is the caller's, on its
    /// stack, never held across a wait.
    pub(super) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.try_read(buf)
    }

    /// See [`Transport::linger`].
    pub(super) async fn linger(&mut self) {
        self.io.linger().await;
    }
}
