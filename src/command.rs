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
    /// A command missing what it needs; the usage to show.
    Usage(&'static str),
    /// `/ls`: who is in this room.
    List,
    /// `/me action`: an action line, `** nick action`.
    Me(&'a str),
    /// `/join #room` or `/j room`: move to a room, making it if need be.
    Join(&'a str),
    /// `/rooms`: every room.
    Rooms,
    /// `/topic` shows this room's topic, `/topic TEXT` sets it.
    Topic(Option<&'a str>),
    /// `/nick name`: change nickname.
    Nick(&'a str),
    /// `/away message` marks you away, `/away` back.
    Away(Option<&'a str>),
    /// `/ignore nick` hides a person; `/ignore` lists whom.
    Ignore(Option<&'a str>),
    /// `/unignore nick`.
    Unignore(&'a str),
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
    /// Any other word starting with `/`.
    Unknown(&'a str),
}

/// Parses a non-empty, trimmed line.
pub fn parse(line: &str) -> Command<'_> {
    if let Some(rest) = line.strip_prefix('@') {
        let (to, text) = split_word(rest);
        return if to.is_empty() || text.is_empty() {
            Command::Usage("@nick message")
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
                _ => Command::Usage("/report nick reason"),
            },
            "/ls" => Command::List,
            "/me" => required(rest, Command::Me, "/me action"),
            "/join" | "/j" => required(rest, Command::Join, "/join #room"),
            "/rooms" => Command::Rooms,
            "/topic" => Command::Topic(optional(rest)),
            "/nick" => required(rest, Command::Nick, "/nick name"),
            "/away" => Command::Away(optional(rest)),
            "/ignore" => Command::Ignore(optional(rest)),
            "/unignore" => required(rest, Command::Unignore, "/unignore nick"),
            "/h" | "/help" => Command::Help,
            "/i" => Command::ToggleIgnore,
            "/quit" | "/q" => Command::Quit,
            _ => Command::Unknown(word),
        };
    }
    Command::Say(line)
}

/// `command(rest)`, or the usage when `rest` is empty.
fn required<'a>(
    rest: &'a str,
    command: fn(&'a str) -> Command<'a>,
    usage: &'static str,
) -> Command<'a> {
    if rest.is_empty() {
        Command::Usage(usage)
    } else {
        command(rest)
    }
}

fn optional(rest: &str) -> Option<&str> {
    (!rest.is_empty()).then_some(rest)
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
    "  /me action     act: shown as ** nick action",
    "  /ls            list who is in this room",
    "  /join #room    go to a room (/j for short); a new name makes a new room",
    "  /rooms         list the rooms",
    "  /topic [text]  show or set this room's topic",
    "  /nick name     change your nickname",
    "  /away [text]   mark yourself away with a message, or back without one",
    "  /ignore [nick] stop seeing nick's messages; alone, list whom you ignore",
    "  /unignore nick see nick's messages again",
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
        assert_eq!(parse("@bob"), Usage("@nick message"));
        assert_eq!(parse("@"), Usage("@nick message"));
        assert_eq!(parse("@ hi"), Usage("@nick message"));
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
        assert_eq!(parse("/REPORT bob"), Usage("/report nick reason"));
        assert_eq!(parse("/report"), Usage("/report nick reason"));
    }

    #[test]
    fn room_and_people_commands() {
        assert_eq!(parse("/me waves  hi"), Me("waves  hi"));
        assert_eq!(parse("/me"), Usage("/me action"));
        assert_eq!(parse("/j rust"), Join("rust"));
        assert_eq!(parse("/JOIN #a b"), Join("#a b"));
        assert_eq!(parse("/join"), Usage("/join #room"));
        assert_eq!(parse("/rooms"), Rooms);
        assert_eq!(parse("/topic"), Topic(None));
        assert_eq!(parse("/topic  hello there"), Topic(Some("hello there")));
        assert_eq!(parse("/nick alicia"), Nick("alicia"));
        assert_eq!(parse("/nick"), Usage("/nick name"));
        assert_eq!(parse("/away"), Away(None));
        assert_eq!(parse("/away lunch"), Away(Some("lunch")));
        assert_eq!(parse("/ignore"), Ignore(None));
        assert_eq!(parse("/ignore bob"), Ignore(Some("bob")));
        assert_eq!(parse("/unignore bob"), Unignore("bob"));
        assert_eq!(parse("/unignore"), Usage("/unignore nick"));
        assert_eq!(parse("/me's"), Unknown("/me's"));
    }
}
