//! Line bytes to safe text: what a user typed, as other users' terminals may show it.
//!
//! Decodes UTF-8 lossily (bad bytes become U+FFFD, never an error), applies the editing
//! keys a terminal in character mode sends, then removes everything that could act on a
//! terminal instead of being shown: escape sequences, C0 and C1 controls, bidirectional
//! overrides, invisible characters and floods of combining marks. The result is NFC and
//! trimmed. Nicknames and messages both pass through [`clean`] before anyone sees them.

use icu_properties::props::DefaultIgnorableCodePoint;
use icu_properties::{CodePointSetData, CodePointSetDataBorrowed};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Combining marks kept after one base character; more are a rendering attack.
const MAX_COMBINING: usize = 8;

/// Turns one line of raw input into text that is safe to show anyone.
pub fn clean(raw: &[u8]) -> String {
    // Most lines are plain printable ASCII, which nothing below would change.
    if raw.iter().all(|b| (0x20..0x7f).contains(b)) {
        return String::from_utf8_lossy(raw).trim().to_owned();
    }
    let text = String::from_utf8_lossy(raw);
    let edited = apply_edits(&text);
    let stripped = strip_controls(&edited);
    let joined = place_joiners(&stripped);
    let capped = cap_combining(&joined);
    let normal: String = capped.nfc().collect();
    normal.trim().to_owned()
}

/// Backspace and DEL erase one character, control-U and control-C the whole line.
fn apply_edits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\x08' | '\x7f' => {
                out.pop();
            }
            '\x15' | '\x03' => out.clear(),
            _ => out.push(c),
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Seq {
    Text,
    /// After ESC.
    Start,
    /// ESC followed by intermediate bytes, waiting for the final one.
    Intermediate,
    /// Control Sequence (ESC [ or U+009B), waiting for its final byte.
    Csi,
    /// OSC, DCS, SOS, PM or APC, which run to a terminator.
    Str,
    /// ESC inside a string: `ESC \` ends it.
    StrEscape,
}

fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut state = Seq::Text;
    for c in text.chars() {
        state = match (state, c) {
            (Seq::Text, _) => text_char(c, &mut out),
            (Seq::Start, '[') => Seq::Csi,
            (Seq::Start, ']' | 'P' | 'X' | '^' | '_') => Seq::Str,
            (Seq::Start | Seq::Intermediate, '\x20'..='\x2f') => Seq::Intermediate,
            (Seq::Start | Seq::Intermediate, '\x30'..='\x7e') => Seq::Text,
            (Seq::Csi, '\x20'..='\x3f') => Seq::Csi,
            (Seq::Csi, '\x40'..='\x7e') => Seq::Text,
            (Seq::Str | Seq::StrEscape, '\x07' | '\u{9c}') => Seq::Text,
            (Seq::Str | Seq::StrEscape, '\x1b') => Seq::StrEscape,
            (Seq::StrEscape, '\\') => Seq::Text,
            (Seq::Str | Seq::StrEscape, _) => Seq::Str,
            // A malformed sequence ends here; the character itself is ordinary input.
            (Seq::Start | Seq::Intermediate | Seq::Csi, _) => text_char(c, &mut out),
        };
    }
    out
}

/// Handles one character outside any escape sequence.
fn text_char(c: char, out: &mut String) -> Seq {
    match c {
        '\x1b' => return Seq::Start,
        '\u{9b}' => return Seq::Csi,
        '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => return Seq::Str,
        '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
        c if c.is_control() || (is_hidden(c) && !is_joiner(c)) => {}
        c => out.push(c),
    }
    Seq::Text
}

/// Characters that show nothing, or nothing but blank space, where they stand: every
/// Default_Ignorable_Code_Point (bidirectional controls, zero-width characters, the soft
/// hyphen, the Hangul fillers, variation selectors, tags...), from Unicode's own tables via
/// ICU4X, plus the few blank-looking ones outside that property (the interlinear annotation
/// controls and the Braille blank). They reorder or hide what others see, or make one
/// nickname look like another or like nothing.
pub fn is_hidden(c: char) -> bool {
    const IGNORABLE: CodePointSetDataBorrowed<'static> =
        CodePointSetData::new::<DefaultIgnorableCodePoint>();
    IGNORABLE.contains(c) || matches!(c, '\u{fff9}'..='\u{fffb}' | '\u{2800}')
}

/// The ignorable characters text keeps in their place, since emoji sequences and several
/// scripts need them: ZWNJ and ZWJ between two visible characters, and one text or emoji
/// variation selector right after a visible character.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200c}' | '\u{200d}' | '\u{fe0e}' | '\u{fe0f}')
}

/// Keeps each joiner ([`is_joiner`]) only where it joins or varies something visible; a
/// joiner at an edge, beside a space or another joiner is dropped.
fn place_joiners(text: &str) -> String {
    let visible = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace() && !is_hidden(c));
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let keep = match c {
            '\u{200c}' | '\u{200d}' => {
                visible(out.chars().last()) && visible(chars.peek().copied())
            }
            '\u{fe0e}' | '\u{fe0f}' => visible(out.chars().last()),
            _ => true,
        };
        if keep {
            out.push(c);
        }
    }
    out
}

fn cap_combining(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut marks = 0;
    for c in text.chars() {
        if is_combining_mark(c) {
            marks += 1;
            if marks > MAX_COMBINING {
                continue;
            }
        } else {
            marks = 0;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn plain_text_passes() {
        assert_eq!(clean(b"  hello there "), "hello there");
        assert_eq!(clean("héllo 本".as_bytes()), "héllo 本");
    }

    #[test]
    fn editing_keys_apply_per_character() {
        assert_eq!(clean(b"abcd\x7fx"), "abcx");
        assert_eq!(clean(b"h\xc3\xa9\x7f\x7fX"), "X");
        assert_eq!(clean(b"abc\x15def"), "def");
        assert_eq!(clean(b"abc\x03def"), "def");
        assert_eq!(clean(b"\x08\x7fhi"), "hi");
    }

    #[test]
    fn bad_utf8_becomes_replacement_characters() {
        assert_eq!(clean(b"caf\xe9"), "caf\u{fffd}");
        assert_eq!(clean(b"\xc0\xafls"), "\u{fffd}\u{fffd}ls");
        assert_eq!(clean(b"\xed\xa0\x80x"), "\u{fffd}\u{fffd}\u{fffd}x");
    }

    #[test]
    fn escape_sequences_are_removed() {
        assert_eq!(clean(b"\x1b[31mRED\x1b[0m text"), "RED text");
        assert_eq!(clean(b"\x1b]0;PWNED\x07title"), "title");
        assert_eq!(clean(b"\x1b]52;c;ZWNobyBoaQ==\x1b\\x"), "x");
        assert_eq!(clean(b"\x1b[2J\x1b[H\x1bc\x1b(0"), "");
        assert_eq!(clean(b"ab\x1b[Dc"), "abc");
        assert_eq!(clean(b"\xc2\x9b31mX\xc2\x9d0;T\xc2\x9cY"), "XY");
        assert_eq!(clean(b"\x1b]0;unterminated title"), "");
        assert_eq!(clean("\x1b[1é".as_bytes()), "é");
    }

    #[test]
    fn controls_and_hidden_characters_are_removed() {
        assert_eq!(clean(b"\x07\x07bell\x0bvt\x0cff"), "bellvtff");
        assert_eq!(clean(b"a\tb"), "a b");
        assert_eq!(clean("\u{202e}evil\u{202c}".as_bytes()), "evil");
        assert_eq!(clean("@bob\u{200b} hi".as_bytes()), "@bob hi");
        assert_eq!(clean("\u{feff}hi".as_bytes()), "hi");
        assert_eq!(clean("x\u{2028}y".as_bytes()), "x y");
        assert_eq!(clean("👨\u{200d}👩".as_bytes()), "👨\u{200d}👩");
        assert_eq!(clean("a\u{85}\u{9f}b".as_bytes()), "a");
    }

    #[test]
    fn every_default_ignorable_and_blank_filler_is_removed() {
        // Soft hyphen, combining grapheme joiner, Mongolian vowel separator, Khmer inherent
        // vowel, Hangul fillers, deprecated format characters, Braille blank.
        for hidden in [
            '\u{ad}',
            '\u{34f}',
            '\u{180e}',
            '\u{17b4}',
            '\u{115f}',
            '\u{1160}',
            '\u{3164}',
            '\u{ffa0}',
            '\u{206a}',
            '\u{206f}',
            '\u{2800}',
            '\u{e0100}',
            '\u{1d173}',
        ] {
            let text = format!("a{hidden}b");
            assert_eq!(clean(text.as_bytes()), "ab", "U+{:04X}", hidden as u32);
            assert_eq!(
                clean(hidden.to_string().as_bytes()),
                "",
                "U+{:04X}",
                hidden as u32
            );
        }
    }

    #[test]
    fn joiners_and_variation_selectors_stay_only_where_they_join_or_vary() {
        assert_eq!(clean("❤\u{fe0f}".as_bytes()), "❤\u{fe0f}");
        assert_eq!(clean("\u{fe0f}\u{fe0f}x".as_bytes()), "x");
        assert_eq!(clean("❤\u{fe0f}\u{fe0f}\u{fe0f}".as_bytes()), "❤\u{fe0f}");
        assert_eq!(clean("a\u{200d}\u{200d}b".as_bytes()), "a\u{200d}b");
        assert_eq!(clean("\u{200d}a\u{200d}".as_bytes()), "a");
        assert_eq!(clean("a \u{200c}b".as_bytes()), "a b");
        assert_eq!(clean("\u{200d}".as_bytes()), "");
    }

    #[test]
    fn combining_floods_are_capped_then_normalized() {
        let input = format!("e{}", "\u{301}".repeat(30));
        assert_eq!(
            clean(input.as_bytes()),
            format!("\u{e9}{}", "\u{301}".repeat(7))
        );
        assert_eq!(clean("e\u{301}".as_bytes()), "\u{e9}");
    }

    #[test]
    fn output_never_holds_a_control_character() {
        let mut all = Vec::new();
        for b in 0..=255u8 {
            all.extend_from_slice(&[b'x', b, 0xc2, b]);
        }
        let out = clean(&all);
        assert!(!out.chars().any(char::is_control), "{out:?}");
    }
}
