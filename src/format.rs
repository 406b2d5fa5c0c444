//! The lines natterd sends, byte for byte: one place for every format a user sees.
//!
//! Chat lines (`<nick> text`, `[a -> b] text`) and system lines (`* text`) carry a
//! `[HH:MM:SS] ` prefix when timestamps are on; errors (`! text`) and plain text (banner,
//! prompt, help) never do. Every line ends in CR LF. Each line is built once and shared by
//! all its recipients.

use std::fmt::Write;

use bytes::Bytes;

/// Builds outgoing lines.
#[derive(Debug, Clone, Copy)]
pub struct Formatter {
    timestamps: bool,
}

impl Formatter {
    /// A formatter that prefixes chat and system lines with the local time when `timestamps`.
    pub fn new(timestamps: bool) -> Formatter {
        Formatter { timestamps }
    }

    /// `<nick> text`: a group message.
    pub fn group(&self, nick: &str, text: &str) -> Bytes {
        self.stamped(format_args!("<{nick}> {text}"))
    }

    /// `** nick text`: a `/me` action. Two stars, so it never passes for a server line.
    pub fn action(&self, nick: &str, text: &str) -> Bytes {
        self.stamped(format_args!("** {nick} {text}"))
    }

    /// `[from -> to] text`: a private message, shown to both ends.
    pub fn private(&self, from: &str, to: &str, text: &str) -> Bytes {
        self.stamped(format_args!("[{from} -> {to}] {text}"))
    }

    /// `* text`: joins, leaves and other news from the server.
    pub fn system(&self, text: std::fmt::Arguments<'_>) -> Bytes {
        self.stamped(format_args!("* {text}"))
    }

    /// `! text`: an error for one user; never timestamped.
    pub fn error(text: std::fmt::Arguments<'_>) -> Bytes {
        line(format_args!("! {text}"))
    }

    fn stamped(&self, body: std::fmt::Arguments<'_>) -> Bytes {
        if self.timestamps {
            let now = chrono::Local::now().format("%H:%M:%S");
            line(format_args!("[{now}] {body}"))
        } else {
            line(body)
        }
    }
}

/// Any text as one line: banner, prompt, help.
pub fn line(text: std::fmt::Arguments<'_>) -> Bytes {
    let mut s = String::with_capacity(64);
    // Writing into a String cannot fail.
    let _ = s.write_fmt(text);
    s.push_str("\r\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_without_timestamps() {
        let f = Formatter::new(false);
        assert_eq!(f.group("alice", "hi"), "<alice> hi\r\n");
        assert_eq!(f.private("alice", "bob", "psst"), "[alice -> bob] psst\r\n");
        assert_eq!(f.system(format_args!("bob joined")), "* bob joined\r\n");
        assert_eq!(f.action("bob", "waves"), "** bob waves\r\n");
        assert_eq!(Formatter::error(format_args!("no")), "! no\r\n");
    }

    #[test]
    fn timestamps_prefix_chat_and_system_lines_only() {
        let f = Formatter::new(true);
        let g = f.group("a", "b");
        let s = std::str::from_utf8(&g).unwrap();
        let b = s.as_bytes();
        assert_eq!(s.len(), "[00:00:00] <a> b\r\n".len(), "{s:?}");
        assert!(
            b[0] == b'[' && b[3] == b':' && b[6] == b':' && b[9] == b']',
            "{s:?}"
        );
        assert!(s.ends_with("] <a> b\r\n"));
        assert!(f.system(format_args!("x")).starts_with(b"["));
        assert_eq!(Formatter::error(format_args!("x")), "! x\r\n");
    }
}
