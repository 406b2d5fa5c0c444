//! Any bytes, split anywhere, through the telnet decoder, the sanitizer and the command
//! parser: nothing may panic, the line buffer stays within its limit, splitting changes
//! nothing, and no control character survives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natter::codec::{Decoder, TelnetEvent};
use natter::{command, nick, sanitize};

const MAX_LINE: usize = 128;

fn run(data: &[u8], cut: usize) -> Vec<String> {
    let mut decoder = Decoder::new(MAX_LINE, true);
    let mut lines = Vec::new();
    let cut = cut.min(data.len());
    for part in [&data[..cut], &data[cut..]] {
        let mut rest = part;
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest);
            assert!(used > 0 && used <= rest.len());
            if let Some(TelnetEvent::Line(raw)) = event {
                assert!(raw.len() <= MAX_LINE);
                lines.push(sanitize::clean(raw));
            }
            rest = &rest[used..];
        }
    }
    lines.extend(decoder.finish().map(sanitize::clean));
    lines
}

fuzz_target!(|data: &[u8]| {
    let cut = data.first().copied().unwrap_or(0) as usize;
    let lines = run(data, cut);
    assert_eq!(lines, run(data, data.len()));
    for line in &lines {
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let _ = command::parse(line);
        let _ = nick::validate(line, 16);
    }
});
