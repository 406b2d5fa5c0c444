//! One client's bounded queue of outgoing lines.
//!
//! Anyone may push without waiting, and the queue never holds more than its byte limit, so
//! a client that stops reading costs at most the limit in memory and never delays a sender.
//! A group message that does not fit is skipped for this client and counted (it is told how
//! many once it has caught up); anything else that does not fit cuts the client off (its
//! session sees [`Outbox::is_aborted`] and ends).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

/// The queue between the hub (and the session itself) and the socket writer.
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    wake: Notify,
    limit: usize,
}

/// What a queued line costs besides its text: its slot in the queue, counted twice since
/// a growing queue may hold twice the slots it uses, and the allocation behind a line
/// (header and size-class rounding). The limit is on text plus this, so a queue of short
/// lines cannot hold several times the limit in bookkeeping.
pub const LINE_OVERHEAD: usize = 2 * std::mem::size_of::<Bytes>() + 32;

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Bytes>,
    /// Text bytes queued, as `natterctl list` shows them.
    bytes: usize,
    /// Memory the queue holds: text plus [`LINE_OVERHEAD`] a line; what the limit bounds.
    cost: usize,
    aborted: bool,
    closing: Option<Close>,
    /// Group messages skipped since the client was last told.
    skipped_untold: u64,
    /// Group messages skipped since connecting.
    skipped_total: u64,
}

/// What [`Outbox::wake`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The client was cut off: a line that had to arrive did not fit.
    pub aborted: bool,
    /// The connection is to end once what is queued is written.
    pub closing: Option<Close>,
    /// Group messages the client missed, told in the lines just taken.
    pub skipped: Option<u64>,
}

/// Why the server ends a connection after its queued lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// An operator kicked the user.
    Kicked,
    /// An operator banned the user's address or nickname.
    Banned,
    /// The server is shutting down.
    Shutdown,
}

impl Outbox {
    /// An empty queue holding at most `limit` bytes.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            inner: Mutex::default(),
            wake: Notify::new(),
            limit,
        }
    }

    /// Queues `line`. Returns false when it did not fit: the queue is then dropped and the
    /// client is cut off, as it was already if an earlier push failed.
    pub fn push(&self, line: Bytes) -> bool {
        self.enqueue(line, |inner| {
            inner.aborted = true;
            inner.queue = VecDeque::new();
            inner.bytes = 0;
            inner.cost = 0;
            true
        })
    }

    /// Queues a group message, or skips it for this client if it does not fit. Returns
    /// false if skipped.
    pub fn push_or_skip(&self, line: Bytes) -> bool {
        self.enqueue(line, |inner| {
            inner.skipped_untold += 1;
            inner.skipped_total += 1;
            false
        })
    }

    /// Queues `line` if it fits; otherwise runs `overflow`, which says whether the session
    /// must be woken to see what it did.
    fn enqueue(&self, line: Bytes, overflow: impl FnOnce(&mut Inner) -> bool) -> bool {
        let mut inner = self.lock();
        if inner.aborted || inner.closing.is_some() {
            return false;
        }
        let cost = line.len() + LINE_OVERHEAD;
        let fits = inner.cost + cost <= self.limit;
        let wake = if fits {
            let was_empty = inner.queue.is_empty();
            inner.bytes += line.len();
            inner.cost += cost;
            inner.queue.push_back(line);
            was_empty
        } else {
            overflow(&mut inner)
        };
        drop(inner);
        if wake {
            self.wake.notify_one();
        }
        fits
    }

    /// What a session does on a wake-up, under one lock: learns whether it was cut off or is
    /// closing, and, when `into` is given (all earlier output is written), takes the next
    /// lines into it as [`Outbox::drain_into`] does.
    pub fn wake(&self, into: Option<&mut Vec<u8>>, max: usize) -> Wake {
        let mut inner = self.lock();
        let skipped = match into {
            Some(buf) if !inner.aborted => drain(&mut inner, buf, max),
            _ => None,
        };
        Wake {
            aborted: inner.aborted,
            closing: inner.closing,
            skipped,
        }
    }

    /// Moves queued lines into `buf` until it holds at least `max` bytes or the queue is
    /// empty. Once it is empty, a note of any skipped messages follows; their number is
    /// returned.
    pub fn drain_into(&self, buf: &mut Vec<u8>, max: usize) -> Option<u64> {
        drain(&mut self.lock(), buf, max)
    }

    /// Group messages skipped for this client since it connected.
    pub fn skipped(&self) -> u64 {
        self.lock().skipped_total
    }

    /// Queues `last` as the connection's last line, even past the limit (by that one line
    /// only: nothing is queued after it), and ends the connection once it is written. A
    /// client whose queue is full still gets its notice (a kick, a ban, the shutdown) after
    /// what it was already owed, and the count of what it missed before the notice. Later
    /// pushes are refused; the first reason given sticks.
    pub fn close_with(&self, last: Bytes, why: Close) {
        let mut inner = self.lock();
        if inner.aborted || inner.closing.is_some() {
            return;
        }
        if inner.skipped_untold > 0 {
            let note = skipped_note(std::mem::take(&mut inner.skipped_untold));
            inner.bytes += note.len();
            inner.cost += note.len() + LINE_OVERHEAD;
            inner.queue.push_back(note);
        }
        inner.bytes += last.len();
        inner.cost += last.len() + LINE_OVERHEAD;
        inner.queue.push_back(last);
        inner.closing = Some(why);
        drop(inner);
        self.wake.notify_one();
    }

    /// Set once [`Outbox::close_with`] was called.
    pub fn closing(&self) -> Option<Close> {
        self.lock().closing
    }

    /// Whether the client was cut off because its queue overflowed.
    pub fn is_aborted(&self) -> bool {
        self.lock().aborted
    }

    /// Bytes waiting to be written.
    pub fn depth(&self) -> usize {
        self.lock().bytes
    }

    /// Resolves after a push to an empty queue or an abort (possibly one that happened
    /// before the call). Spurious wake-ups are possible; check the state again.
    pub async fn changed(&self) {
        self.wake.notified().await;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The queue stays consistent even if a holder panicked, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Moves queued lines into `buf` (see [`Outbox::drain_into`]).
fn drain(inner: &mut Inner, buf: &mut Vec<u8>, max: usize) -> Option<u64> {
    while buf.len() < max {
        let Some(line) = inner.queue.pop_front() else {
            break;
        };
        inner.bytes -= line.len();
        inner.cost -= line.len() + LINE_OVERHEAD;
        buf.extend_from_slice(&line);
    }
    if inner.queue.is_empty() && inner.queue.capacity() > 8 {
        // A burst (say, a storm of joins) is over; don't keep its bookkeeping.
        inner.queue = VecDeque::new();
    }
    if inner.queue.is_empty() && inner.skipped_untold > 0 {
        let n = std::mem::take(&mut inner.skipped_untold);
        buf.extend_from_slice(&skipped_note(n));
        return Some(n);
    }
    None
}

/// What a client that missed `n` group messages is told once it has caught up.
fn skipped_note(n: u64) -> Bytes {
    Bytes::from(format!(
        "! {n} messages skipped (you are reading too slowly)\r\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limit that holds `lines` queue entries and `text` bytes of text.
    fn room(lines: usize, text: usize) -> usize {
        lines * LINE_OVERHEAD + text
    }

    #[test]
    fn drains_in_order_up_to_a_chunk() {
        let o = Outbox::new(room(3, 100));
        assert!(o.push(Bytes::from_static(b"one\r\n")));
        assert!(o.push(Bytes::from_static(b"two\r\n")));
        assert!(o.push(Bytes::from_static(b"three\r\n")));
        let mut buf = Vec::new();
        o.drain_into(&mut buf, 6);
        assert_eq!(buf, b"one\r\ntwo\r\n");
        assert_eq!(o.depth(), 7);
        o.drain_into(&mut buf, 1000);
        assert_eq!(buf, b"one\r\ntwo\r\nthree\r\n");
        assert_eq!(o.depth(), 0);
    }

    #[test]
    fn close_keeps_what_is_queued_and_refuses_more() {
        let o = Outbox::new(room(1, 100));
        assert!(o.push(Bytes::from_static(b"last\r\n")));
        o.close_with(Bytes::from_static(b"bye\r\n"), Close::Kicked);
        o.close_with(Bytes::from_static(b"no\r\n"), Close::Shutdown);
        assert!(!o.push(Bytes::from_static(b"more\r\n")));
        assert_eq!(o.closing(), Some(Close::Kicked));
        assert_eq!(o.depth(), 11);
    }

    #[test]
    fn group_messages_that_do_not_fit_are_skipped_and_reported_once_caught_up() {
        let o = Outbox::new(room(1, 12));
        assert!(o.push_or_skip(Bytes::from_static(b"aaaaa\r\n")));
        assert!(!o.push_or_skip(Bytes::from_static(b"bbbbbbb\r\n")));
        assert!(!o.push_or_skip(Bytes::from_static(b"ccccccc\r\n")));
        assert!(!o.is_aborted());
        let mut buf = Vec::new();
        o.drain_into(&mut buf, 1000);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "aaaaa\r\n! 2 messages skipped (you are reading too slowly)\r\n"
        );
        assert_eq!(o.skipped(), 2);
        let mut buf = Vec::new();
        o.drain_into(&mut buf, 1000);
        assert!(buf.is_empty(), "told once");
        // A line that must arrive and does not fit still cuts the client off.
        assert!(o.push(Bytes::from_static(b"123456789\r\n")));
        assert!(!o.push(Bytes::from_static(b"xx\r\n")));
        assert!(o.is_aborted());
    }

    #[test]
    fn a_last_line_is_queued_even_when_the_queue_is_full() {
        let o = Outbox::new(room(1, 10));
        assert!(o.push(Bytes::from_static(b"12345678")));
        assert!(!o.push_or_skip(Bytes::from_static(b"abc")));
        o.close_with(Bytes::from_static(b"bye\r\n"), Close::Shutdown);
        o.close_with(Bytes::from_static(b"again\r\n"), Close::Kicked);
        assert!(!o.is_aborted());
        assert_eq!(o.closing(), Some(Close::Shutdown));
        let mut buf = Vec::new();
        o.drain_into(&mut buf, 1000);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "12345678! 1 messages skipped (you are reading too slowly)\r\nbye\r\n"
        );
    }

    #[test]
    fn overflow_cuts_off_and_frees() {
        let o = Outbox::new(room(1, 10));
        assert!(o.push(Bytes::from_static(b"12345678")));
        assert!(!o.push(Bytes::from_static(b"abc")));
        assert!(o.is_aborted());
        assert_eq!(o.depth(), 0);
        assert!(!o.push(Bytes::from_static(b"x")));
    }
}
