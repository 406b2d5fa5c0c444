//! Nickname rules: what may be chosen, and when two nicknames are the same.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::sanitize;

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
    /// Has no visible letter, digit or symbol: it would look blank.
    Invisible,
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
            NickError::Invisible => f.write_str("nickname needs a visible letter, digit or symbol"),
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
    } else if !nick
        .chars()
        .any(|c| !sanitize::is_hidden(c) && !is_combining_mark(c))
    {
        Err(NickError::Invisible)
    } else {
        Ok(())
    }
}

/// The form two nicknames are compared in (uniqueness, reserved names, bans and mutes), so
/// look-alikes count as one:
///
/// 1. characters that show nothing are dropped ([`sanitize::is_hidden`]: every
///    Default_Ignorable_Code_Point and the blank fillers), so `bob` and `bob` + U+034F are one;
/// 2. [`fold`]: NFKC and full case folding, so `Ａ`, `A` and `a` are one;
/// 3. the UTS #39 confusable skeleton, so Cyrillic `а` is Latin `a`, `0` is `O` and `rn` is
///    `m`; then folded again, since a skeleton may hold capitals.
///
/// Keys are for comparing, never shown.
pub fn key(nick: &str) -> String {
    let folded = fold(&visible(nick));
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    fold(&skeleton)
}

/// `text` without the characters that show nothing ([`sanitize::is_hidden`]): a nickname
/// is shown as what it looks like, without even the joiners chat text keeps.
pub fn visible(text: &str) -> Cow<'_, str> {
    if text.chars().any(sanitize::is_hidden) {
        Cow::Owned(text.chars().filter(|&c| !sanitize::is_hidden(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// Unicode NFKC (fullwidth `Ａ` is `A`, the ligature `ﬁ` is `fi`), then full case folding
/// (`Bob` is `bob`, `STRASSE` is `straße`), then NFKC again, as Unicode's NFKC_Casefold
/// does: the order nicknames are listed in.
pub fn fold(nick: &str) -> String {
    let compatible: String = nick.nfkc().collect();
    caseless::default_case_fold_str(&compatible)
        .nfkc()
        .collect()
}

/// Former nickname keys one connection remembers, so that a ban or mute on a name it gave up
/// still finds it: the newest this many (at 3 changes a minute, the last ten minutes).
pub const FORMER_KEPT: usize = 32;

/// The [`key`]s of the nicknames one connection has held: the one it has now and up to
/// [`FORMER_KEPT`] before it. Until a change there is nothing but the current key, so most
/// connections pay for no list.
#[derive(Debug, Clone, Default)]
pub struct HeldKeys {
    current: Arc<str>,
    former: Vec<Arc<str>>,
}

impl HeldKeys {
    /// Keys of a connection whose nickname has key `key`.
    pub fn new(key: Arc<str>) -> HeldKeys {
        HeldKeys {
            current: key,
            former: Vec::new(),
        }
    }

    /// The current nickname's key.
    pub fn current(&self) -> &Arc<str> {
        &self.current
    }

    /// A change of nickname to one with key `key`.
    pub fn change(&mut self, key: Arc<str>) {
        if key == self.current {
            return;
        }
        let old = std::mem::replace(&mut self.current, key);
        self.former.retain(|k| *k != self.current && *k != old);
        self.former.push(old);
        if self.former.len() > FORMER_KEPT {
            self.former.remove(0);
        }
    }

    /// Every key held, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&*self.current).chain(self.former.iter().map(|k| &**k))
    }
}

/// The [`key`]s of `reserved`, to look a nickname's key up in: computed once per
/// configuration, not for every nickname attempt.
pub fn keys(reserved: &[String]) -> HashSet<String> {
    reserved.iter().map(|r| key(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_keys_are_bounded() {
        let mut keys = HeldKeys::new("a".into());
        keys.change("b".into());
        keys.change("a".into());
        keys.change("a".into());
        assert_eq!(keys.all().collect::<Vec<_>>(), ["a", "b"]);
        for i in 0..100 {
            keys.change(format!("k{i}").into());
        }
        assert_eq!(keys.all().count(), FORMER_KEPT + 1);
        assert_eq!(&**keys.current(), "k99");
        assert!(keys.all().any(|k| k == "k67") && !keys.all().any(|k| k == "k66"));
    }

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
        assert_eq!(key("ＡＬＩＣＥ"), key("alice"));
        assert_eq!(key("ﬁsh"), key("FISH"));
        assert_eq!(key("STRASSE"), key("straße"));
        assert_eq!(key("ǅemal"), key("DŽEMAL"));
        assert_eq!(key("x\u{2075}"), key("x5"));
        assert_ne!(key("alice"), key("alicé"));
    }

    #[test]
    fn invisible_characters_make_no_difference() {
        for hidden in [
            '\u{34f}', '\u{ad}', '\u{fe0f}', '\u{180e}', '\u{200d}', '\u{17b4}',
        ] {
            assert_eq!(key(&format!("bob{hidden}")), key("bob"));
            assert_eq!(key(&format!("b{hidden}ob")), key("bob"));
        }
        assert_eq!(key("adm\u{ad}in"), key("admin"));
    }

    #[test]
    fn blank_looking_nicknames_are_refused() {
        for blank in [
            "\u{3164}",
            "\u{ffa0}",
            "\u{2800}",
            "\u{34f}",
            "\u{3164}\u{3164}",
            "\u{301}",
        ] {
            assert_eq!(validate(blank, 16), Err(NickError::Invisible), "{blank:?}");
        }
        assert_eq!(validate("\u{3164}x", 16), Ok(()));
    }

    #[test]
    fn confusables_across_scripts_are_the_same() {
        // Cyrillic а, о, е; Greek ο; digits that pass for letters.
        assert_eq!(key("\u{430}dmin"), key("admin"));
        assert_eq!(key("b\u{43e}b"), key("bob"));
        assert_eq!(key("b\u{3bf}b"), key("BOB"));
        assert_eq!(key("alic\u{435}"), key("Alice"));
        assert_eq!(key("b0b"), key("bob"));
        assert_eq!(key("pau1"), key("paul"));
        assert_ne!(key("bob"), key("rob"));
    }

    #[test]
    fn reserved_names() {
        let reserved = keys(&["admin".to_owned(), "Root".to_owned()]);
        assert!(reserved.contains(&key("ADMIN")));
        assert!(reserved.contains(&key("ｒｏｏｔ")));
        assert!(!reserved.contains(&key("admins")));
    }
}
