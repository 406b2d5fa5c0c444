//! The hostile-input corpus (tests/data/telnet-decoder.txt), replayed two ways: through the
//! decoder and sanitizer directly, fed whole and one byte at a time, and over TCP to a real
//! natterd, where another user must see exactly the expected lines and nothing else.

mod common;

use common::Daemon;
use natter::codec::{Decoder, TelnetEvent};
use natter::sanitize;

struct Case {
    input: Vec<u8>,
    lines: Vec<String>,
    reply: Vec<u8>,
    too_long: usize,
    why: String,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/telnet-decoder.txt");
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(parse_case)
        .collect();
    assert!(cases.len() > 40, "corpus not read");
    cases
}

/// `<bytes literal>\tlines=[...]; reply=b'...'; notices=[...]; -- why`
fn parse_case(line: &str) -> Case {
    let (input, rest) = line.split_once('\t').expect("tab");
    let (expected, why) = rest.split_once(" -- ").expect("why");
    let input = literal(input).0;
    let body = expected.strip_prefix("lines=[").expect("lines");
    let mut lines = Vec::new();
    let mut rest = body;
    while !rest.starts_with(']') {
        let (value, after) = literal(rest);
        lines.push(String::from_utf8(value).expect("utf-8 line"));
        rest = after.trim_start_matches(", ");
    }
    let rest = rest.strip_prefix("]; reply=").expect("reply");
    let (reply, rest) = literal(rest);
    let notices = rest.strip_prefix("; notices=[").expect("notices");
    Case {
        input,
        lines,
        reply,
        too_long: notices.matches("line-too-long").count(),
        why: why.to_owned(),
    }
}

/// One Python string or bytes literal at the start of `s`, and what follows it.
fn literal(s: &str) -> (Vec<u8>, &str) {
    let (bytes, s) = match s.strip_prefix('b') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let quote = s.chars().next().expect("quote");
    let mut out = Vec::new();
    let mut chars = s[1..].char_indices();
    let hex = |chars: &mut std::str::CharIndices, n: usize| -> u32 {
        let digits: String = chars.take(n).map(|(_, c)| c).collect();
        u32::from_str_radix(&digits, 16).expect("hex")
    };
    let push = |out: &mut Vec<u8>, code: u32| {
        if bytes {
            out.push(u8::try_from(code).expect("byte"));
        } else {
            let c = char::from_u32(code).expect("char");
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    };
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return (out, &s[i + 2..]),
            '\\' => {
                let (_, e) = chars.next().expect("escape");
                let code = match e {
                    'n' => 10,
                    'r' => 13,
                    't' => 9,
                    'x' => hex(&mut chars, 2),
                    'u' => hex(&mut chars, 4),
                    'U' => hex(&mut chars, 8),
                    other => u32::from(other),
                };
                push(&mut out, code);
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    panic!("unterminated literal");
}

/// Lines, replies and too-long count for `input` fed in `chunk`-byte pieces, then EOF.
fn decode(input: &[u8], chunk: usize) -> (Vec<String>, Vec<u8>, usize) {
    let mut decoder = Decoder::new(512, true);
    let (mut lines, mut replies, mut too_long) = (Vec::new(), Vec::new(), 0);
    let keep = |raw: &[u8], lines: &mut Vec<String>| {
        let line = sanitize::clean(raw);
        if !line.is_empty() {
            lines.push(line);
        }
    };
    for piece in input.chunks(chunk) {
        let mut rest = piece;
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest);
            match event {
                Some(TelnetEvent::Line(raw)) => keep(raw, &mut lines),
                Some(TelnetEvent::TooLong) => too_long += 1,
                _ => {}
            }
            rest = &rest[used..];
            replies.extend(decoder.take_replies().unwrap_or_default());
        }
    }
    if let Some(raw) = decoder.finish() {
        keep(raw, &mut lines);
    }
    (lines, replies, too_long)
}

#[test]
fn decoder_matches_the_corpus() {
    for case in cases() {
        for chunk in [case.input.len().max(1), 1, 3] {
            let (lines, reply, too_long) = decode(&case.input, chunk);
            let what = format!("{} (chunks of {chunk})", case.why);
            assert_eq!(lines, case.lines, "{what}");
            assert_eq!(reply, case.reply, "{what}");
            assert_eq!(too_long, case.too_long, "{what}");
            for line in &lines {
                assert!(!line.chars().any(char::is_control), "{what}: {line:?}");
            }
        }
    }
}

#[test]
fn server_relays_the_corpus_clean() {
    let d = Daemon::start();
    let mut observer = d.login("observer");
    for case in cases() {
        // Lines that are commands or private messages go elsewhere; the decoder test covers
        // them.
        if case.lines.iter().any(|l| l.starts_with(['/', '@'])) {
            continue;
        }
        let mut sender = d.login("sender");
        observer.expect("* sender joined");
        sender.send(&case.input);
        sender.shutdown_write();
        for line in &case.lines {
            assert_eq!(observer.line(), format!("<sender> {line}"), "{}", case.why);
        }
        assert_eq!(observer.line(), "* sender left", "{}", case.why);
        // What the sender got back: telnet replies first, then any notice.
        let back = sender.bytes(case.reply.len());
        assert_eq!(back, case.reply, "{}", case.why);
        for _ in 0..case.too_long {
            assert_eq!(
                sender.line(),
                "! line too long (max 512 bytes)",
                "{}",
                case.why
            );
        }
        sender.expect_closed();
    }
}
