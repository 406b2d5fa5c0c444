//! What a chat line means: a group message, a private message or a `/` command.

/// One line typed by a logged-in user, already sanitized.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A group message to everyone else.
    Say(&'a str),
    /// `@nick text`: a private message.
    Whisper {
        /// The nickname after `@`, as typed.
        to: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `@nick` without a message, or `@` alone.
    WhisperUsage,
    /// `/ls`: who is online.
    List,
    /// `/h` or `/help`.
    Help,
    /// `/i`: toggle ignore mode.
    ToggleIgnore,
    /// `/quit` or `/q`.
    Quit,
    /// `/report nick reason`: flag abuse to the operators.
    Report {
        /// The nickname reported, as typed.
        about: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// `/report` without a nickname and a reason.
    ReportUsage,
    /// Any other word starting with `/`.
    Unknown(&'a str),
}

/// Parses a non-empty, trimmed line.
pub fn parse(line: &str) -> Command<'_> {
    if let Some(rest) = line.strip_prefix('@') {
        let (to, text) = split_word(rest);
        return if to.is_empty() || text.is_empty() {
            Command::WhisperUsage
        } else {
            Command::Whisper { to, text }
        };
    }
    if line.starts_with('/') {
        let (word, rest) = split_word(line);
        return match word.to_ascii_lowercase().as_str() {
            "/report" => match split_word(rest) {
                (about, reason) if !about.is_empty() && !reason.is_empty() => {
                    Command::Report { about, reason }
                }
                _ => Command::ReportUsage,
            },
            "/ls" => Command::List,
            "/h" | "/help" => Command::Help,
            "/i" => Command::ToggleIgnore,
            "/quit" | "/q" => Command::Quit,
            _ => Command::Unknown(word),
        };
    }
    Command::Say(line)
}

/// The first word and the trimmed rest.
fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (s, ""),
    }
}

/// One line per command, for `/h`.
pub const HELP: &[&str] = &[
    "Commands:",
    "  text           send text to everyone",
    "  @nick text     send text to nick only",
    "  /ls            list who is online",
    "  /i             ignore mode on/off: stop or resume receiving group messages",
    "  /report nick reason  tell the operators about abuse",
    "  /h, /help      show this help",
    "  /quit, /q      leave",
];

#[cfg(test)]
mod tests {
    use super::{Command::*, parse};

    #[test]
    fn group_messages() {
        assert_eq!(parse("hello all"), Say("hello all"));
        assert_eq!(parse("a @b"), Say("a @b"));
    }

    #[test]
    fn private_messages() {
        assert_eq!(
            parse("@bob hi there"),
            Whisper {
                to: "bob",
                text: "hi there"
            }
        );
        assert_eq!(
            parse("@bob   spaced"),
            Whisper {
                to: "bob",
                text: "spaced"
            }
        );
        assert_eq!(parse("@bob"), WhisperUsage);
        assert_eq!(parse("@"), WhisperUsage);
        assert_eq!(parse("@ hi"), WhisperUsage);
    }

    #[test]
    fn slash_commands() {
        assert_eq!(parse("/ls"), List);
        assert_eq!(parse("/LS extra"), List);
        assert_eq!(parse("/h"), Help);
        assert_eq!(parse("/help"), Help);
        assert_eq!(parse("/i"), ToggleIgnore);
        assert_eq!(parse("/quit"), Quit);
        assert_eq!(parse("/q bye"), Quit);
        assert_eq!(parse("/foo bar"), Unknown("/foo"));
        assert_eq!(parse("/"), Unknown("/"));
        assert_eq!(parse("/lsx"), Unknown("/lsx"));
        assert_eq!(
            parse("/report bob spamming  links"),
            Report {
                about: "bob",
                reason: "spamming  links"
            }
        );
        assert_eq!(parse("/REPORT bob"), ReportUsage);
        assert_eq!(parse("/report"), ReportUsage);
    }
}
