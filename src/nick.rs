//! Nickname rules: what may be chosen, and when two nicknames are the same.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

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
    /// Someone online already uses it, or one that looks the same (see [`key`]).
    Taken,
    /// On the operator's `[chat] reserved_nicks` list.
    Reserved,
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickError::TooLong(max) => write!(f, "nickname too long (max {max} characters)"),
            NickError::Whitespace => f.write_str("nickname may not contain spaces"),
            NickError::Control => f.write_str("nickname may not contain control characters"),
            NickError::BadStart => f.write_str("nickname may not start with @ or /"),
            NickError::Taken => f.write_str("nickname already taken"),
            NickError::Reserved => f.write_str("nickname reserved"),
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

/// The form two nicknames are compared in, so look-alikes count as one: Unicode NFKC
/// (fullwidth `Ａ` is `A`, the ligature `ﬁ` is `fi`), then full case folding (`Bob` is
/// `bob`, `STRASSE` is `straße`), then NFKC again, as Unicode's NFKC_Casefold does.
pub fn key(nick: &str) -> String {
    let compatible: String = nick.nfkc().collect();
    caseless::default_case_fold_str(&compatible)
        .nfkc()
        .collect()
}

/// Whether `nick` is one of `reserved` (compared as [`key`]s).
pub fn is_reserved(nick: &str, reserved: &[String]) -> bool {
    let key = key(nick);
    reserved.iter().any(|r| self::key(r) == key)
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

    #[test]
    fn look_alikes_are_the_same() {
        assert_eq!(key("Ａlice"), key("alice"));
        assert_eq!(key("ＡＬＩＣＥ"), "alice");
        assert_eq!(key("ﬁsh"), key("FISH"));
        assert_eq!(key("STRASSE"), key("straße"));
        assert_eq!(key("ǅemal"), key("DŽEMAL"));
        assert_eq!(key("x\u{2075}"), key("x5"));
        assert_ne!(key("alice"), key("alicé"));
    }

    #[test]
    fn reserved_names() {
        let reserved = vec!["admin".to_owned(), "Root".to_owned()];
        assert!(is_reserved("ADMIN", &reserved));
        assert!(is_reserved("ｒｏｏｔ", &reserved));
        assert!(!is_reserved("admins", &reserved));
    }
}
