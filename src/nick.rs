//! Nickname rules: what may be chosen, and when two nicknames are the same.

use std::fmt;

/// Why a nickname was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NickError {
    /// Longer than the configured maximum (characters).
    TooLong(usize),
    /// Contains a space or other whitespace.
    Whitespace,
    /// Contains a control character.
    Control,
    /// Starts with `@` or `/`, which would read as a command.
    BadStart,
    /// Someone online already uses it (ignoring case).
    Taken,
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickError::TooLong(max) => write!(f, "nickname too long (max {max} characters)"),
            NickError::Whitespace => f.write_str("nickname may not contain spaces"),
            NickError::Control => f.write_str("nickname may not contain control characters"),
            NickError::BadStart => f.write_str("nickname may not start with @ or /"),
            NickError::Taken => f.write_str("nickname already taken"),
        }
    }
}

/// Checks a sanitized, trimmed, non-empty nickname against the rules.
pub fn validate(nick: &str, max_len: usize) -> Result<(), NickError> {
    if nick.chars().count() > max_len {
        Err(NickError::TooLong(max_len))
    } else if nick.chars().any(char::is_whitespace) {
        Err(NickError::Whitespace)
    } else if nick.chars().any(char::is_control) {
        Err(NickError::Control)
    } else if nick.starts_with(['@', '/']) {
        Err(NickError::BadStart)
    } else {
        Ok(())
    }
}

/// The form two nicknames are compared in: `Bob` and `bob` are the same user.
pub fn key(nick: &str) -> String {
    nick.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(validate("alice", 16), Ok(()));
        assert_eq!(validate("Zoë_2", 16), Ok(()));
        assert_eq!(validate("本本本本", 4), Ok(()));
        assert_eq!(validate("本本本本本", 4), Err(NickError::TooLong(4)));
        assert_eq!(validate("a b", 16), Err(NickError::Whitespace));
        assert_eq!(validate("a\u{a0}b", 16), Err(NickError::Whitespace));
        assert_eq!(validate("a\u{1}b", 16), Err(NickError::Control));
        assert_eq!(validate("@al", 16), Err(NickError::BadStart));
        assert_eq!(validate("/al", 16), Err(NickError::BadStart));
        assert_eq!(validate("a@l/", 16), Ok(()));
    }

    #[test]
    fn same_ignoring_case() {
        assert_eq!(key("Bob"), key("bOB"));
        assert_eq!(key("ÉMILE"), key("émile"));
        assert_ne!(key("bob"), key("bobby"));
    }
}
