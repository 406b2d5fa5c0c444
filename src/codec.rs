//! Telnet-tolerant line framing: raw socket bytes in, raw line bytes out.
//!
//! Two stages run byte by byte with all state kept across reads, so input may be split
//! anywhere: the telnet layer removes IAC commands and answers option requests (refusing all
//! of them but binary mode), and the line assembler ends a line at CR LF, CR NUL, LF or a bare
//! CR and enforces the line length limit. Turning line bytes into text is [`crate::sanitize`].
//! No I/O happens here: replies for the peer collect in [`Decoder::take_replies`].

/// Interpret As Command: starts every telnet command.
const IAC: u8 = 0xFF;
const DONT: u8 = 0xFE;
const DO: u8 = 0xFD;
const WONT: u8 = 0xFC;
const WILL: u8 = 0xFB;
/// Subnegotiation begin and end.
const SB: u8 = 0xFA;
const SE: u8 = 0xF0;
/// Erase line, erase character, are-you-there.
const EL: u8 = 0xF8;
const EC: u8 = 0xF7;
const AYT: u8 = 0xF6;

const OPT_BINARY: u8 = 0;
const OPT_TIMING_MARK: u8 = 6;

/// What the server sends first when binary mode is on: `IAC DO BINARY`, then CR NUL so that
/// the banner overwrites whatever a netcat user's terminal made of those bytes.
pub const TELNET_HELLO: &[u8] = &[IAC, DO, OPT_BINARY, b'\r', 0];

/// Refusals sent per (verb, option); past this the peer is ignored so nobody loops.
const MAX_ANSWERS: u8 = 3;
/// Distinct (verb, option) pairs remembered; requests beyond them go unanswered.
const MAX_TRACKED: usize = 16;

/// Line buffer capacity kept between lines; more is given back.
const IDLE_LINE_CAPACITY: usize = 128;

/// Backspace and control-U, which the line assembler stores for [`crate::sanitize`] to apply.
const BS: u8 = 0x08;
const NAK: u8 = 0x15;

/// Something the decoder found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum TelnetEvent<'a> {
    /// A complete line as raw bytes, telnet commands removed; may be empty.
    Line(&'a [u8]),
    /// The current line passed the limit; it is being discarded up to its end.
    TooLong,
    /// The peer sent `IAC AYT`.
    AreYouThere,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Data,
    Iac,
    Option(u8),
    Sub,
    SubIac,
}

/// The per-connection input state machine.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// The previous data byte was CR, so a following LF or NUL belongs to it.
    after_cr: bool,
    line: Vec<u8>,
    max_line: usize,
    /// The current line overflowed; drop bytes until its end.
    discarding: bool,
    /// `line` was handed out by the last call and must be cleared before reuse.
    line_taken: bool,
    binary_requested: bool,
    binary_on: bool,
    answered: Vec<(u8, u8, u8)>,
    replies: Vec<u8>,
    /// Telnet commands seen since [`Decoder::take_commands`], for flood control: they cost
    /// work and replies, so a stream of them must be paced like lines.
    commands: u32,
}

impl Decoder {
    /// A decoder for lines of at most `max_line` bytes; `binary_requested` says whether
    /// [`TELNET_HELLO`] was sent, so that `WILL BINARY` is the expected answer.
    pub fn new(max_line: usize, binary_requested: bool) -> Decoder {
        Decoder {
            state: State::Data,
            after_cr: false,
            line: Vec::new(),
            max_line,
            discarding: false,
            line_taken: false,
            binary_requested,
            binary_on: false,
            answered: Vec::new(),
            replies: Vec::new(),
            commands: 0,
        }
    }

    /// Consumes `input` up to and including the byte that completes an event. Returns how
    /// many bytes were used and the event, if any; call again with the rest.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<TelnetEvent<'_>>) {
        if self.line_taken {
            self.release_line();
        }
        for (i, &byte) in input.iter().enumerate() {
            match self.step(byte) {
                Step::Continue => {}
                Step::Line => {
                    self.line_taken = true;
                    return (i + 1, Some(TelnetEvent::Line(&self.line)));
                }
                Step::TooLong => return (i + 1, Some(TelnetEvent::TooLong)),
                Step::AreYouThere => return (i + 1, Some(TelnetEvent::AreYouThere)),
            }
        }
        (input.len(), None)
    }

    /// At end of input: the unfinished line, if it has anything in it.
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.line_taken {
            self.release_line();
        }
        let in_text = matches!(self.state, State::Data | State::Iac | State::Option(_));
        (in_text && !self.discarding && !self.line.is_empty()).then_some(&self.line[..])
    }

    /// Empties the line buffer after a line was handed out; a long line's memory goes back,
    /// so an idle connection holds little.
    fn release_line(&mut self) {
        if self.line.capacity() > IDLE_LINE_CAPACITY {
            self.line = Vec::new();
        } else {
            self.line.clear();
        }
        self.line_taken = false;
    }

    /// Telnet replies owed to the peer since the last call.
    pub fn take_replies(&mut self) -> Option<Vec<u8>> {
        (!self.replies.is_empty()).then(|| std::mem::take(&mut self.replies))
    }

    /// Telnet commands (not escaped `IAC IAC` data) seen since the last call.
    pub fn take_commands(&mut self) -> u32 {
        std::mem::take(&mut self.commands)
    }

    fn step(&mut self, byte: u8) -> Step {
        match self.state {
            State::Data => self.data(byte),
            State::Iac => self.command(byte),
            State::Option(verb) => {
                self.state = State::Data;
                self.negotiate(verb, byte);
                Step::Continue
            }
            State::Sub => {
                if byte == IAC {
                    self.state = State::SubIac;
                }
                Step::Continue
            }
            State::SubIac => match byte {
                SE => {
                    self.state = State::Data;
                    Step::Continue
                }
                IAC => {
                    self.state = State::Sub;
                    Step::Continue
                }
                // A command inside a subnegotiation ends it: the peer never meant one.
                _ => self.command(byte),
            },
        }
    }

    fn data(&mut self, byte: u8) -> Step {
        if std::mem::take(&mut self.after_cr) && (byte == b'\n' || byte == 0) {
            return Step::Continue;
        }
        match byte {
            IAC => {
                self.state = State::Iac;
                Step::Continue
            }
            b'\r' => {
                self.after_cr = true;
                self.end_line()
            }
            b'\n' => self.end_line(),
            0 => Step::Continue,
            _ => self.push(byte),
        }
    }

    fn command(&mut self, byte: u8) -> Step {
        self.state = State::Data;
        if byte != IAC {
            self.commands = self.commands.saturating_add(1);
        }
        match byte {
            IAC => self.push(IAC),
            WILL..=DONT => {
                self.state = State::Option(byte);
                Step::Continue
            }
            SB => {
                self.state = State::Sub;
                Step::Continue
            }
            EC => self.push(BS),
            EL => self.push(NAK),
            AYT => Step::AreYouThere,
            // IP, AO, BRK, SUSP, NOP, DM, GA, EOR, ABORT, EOF and unknown bytes: a line-mode
            // client already acted on these itself, and mid-line they are mangled text.
            _ => Step::Continue,
        }
    }

    /// Answers an option request with every option off (RFC 1143), except binary mode
    /// when we asked for it.
    fn negotiate(&mut self, verb: u8, option: u8) {
        match (verb, option) {
            // Telnet clients freeze their output until this answer comes; always give it.
            (DO, OPT_TIMING_MARK) => self.replies.extend_from_slice(&[IAC, WONT, option]),
            (WILL, OPT_BINARY) if self.binary_requested => self.binary_on = true,
            (WONT, OPT_BINARY) if self.binary_on => {
                self.binary_on = false;
                self.answer(WONT, DONT, option);
            }
            (DO, _) => self.answer(DO, WONT, option),
            (WILL, _) => self.answer(WILL, DONT, option),
            // WONT and DONT for options that are off need no answer; answering loops.
            _ => {}
        }
    }

    fn answer(&mut self, verb: u8, reply: u8, option: u8) {
        let known = self
            .answered
            .iter()
            .position(|&(v, o, _)| (v, o) == (verb, option));
        let index = match known {
            Some(index) => index,
            None if self.answered.len() < MAX_TRACKED => {
                self.answered.push((verb, option, 0));
                self.answered.len() - 1
            }
            None => return,
        };
        let count = &mut self.answered[index].2;
        if *count < MAX_ANSWERS {
            *count += 1;
            self.replies.extend_from_slice(&[IAC, reply, option]);
        }
    }

    fn push(&mut self, byte: u8) -> Step {
        if self.discarding {
            return Step::Continue;
        }
        if self.line.len() >= self.max_line {
            self.discarding = true;
            self.line.clear();
            return Step::TooLong;
        }
        self.line.push(byte);
        Step::Continue
    }

    fn end_line(&mut self) -> Step {
        if std::mem::take(&mut self.discarding) {
            return Step::Continue;
        }
        Step::Line
    }
}

enum Step {
    Continue,
    Line,
    TooLong,
    AreYouThere,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines, replies and too-long notices for a whole stream fed in pieces of `chunk` bytes.
    pub(crate) fn run(input: &[u8], chunk: usize, binary: bool) -> (Vec<Vec<u8>>, Vec<u8>, usize) {
        let mut d = Decoder::new(512, binary);
        let (mut lines, mut replies, mut too_long) = (Vec::new(), Vec::new(), 0);
        for piece in input.chunks(chunk.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, event) = d.decode(rest);
                match event {
                    Some(TelnetEvent::Line(l)) if !l.is_empty() => lines.push(l.to_vec()),
                    Some(TelnetEvent::TooLong) => too_long += 1,
                    Some(TelnetEvent::Line(_)) => {}
                    Some(TelnetEvent::AreYouThere) | None => {}
                }
                rest = &rest[used..];
                replies.extend(d.take_replies().unwrap_or_default());
            }
        }
        if let Some(tail) = d.finish() {
            lines.push(tail.to_vec());
        }
        (lines, replies, too_long)
    }

    fn lines(input: &[u8]) -> Vec<Vec<u8>> {
        run(input, input.len(), true).0
    }

    #[test]
    fn every_line_end_works_at_once() {
        assert_eq!(lines(b"a\nb\r\nc\rd\r\0e"), [b"a", b"b", b"c", b"d", b"e"]);
        let mut d = Decoder::new(512, true);
        // A bare CR completes the line without waiting for the next byte.
        assert_eq!(d.decode(b"hello\r"), (6, Some(TelnetEvent::Line(b"hello"))));
        // ...and the LF that follows in another read is not a second line end.
        assert_eq!(d.decode(b"\nx\n"), (3, Some(TelnetEvent::Line(b"x"))));
    }

    #[test]
    fn each_line_end_is_one_line() {
        let mut d = Decoder::new(512, true);
        let mut input = &b"\r\n\r\0\n\r"[..];
        let mut empty = 0;
        while !input.is_empty() {
            let (used, event) = d.decode(input);
            empty += usize::from(event == Some(TelnetEvent::Line(b"")));
            input = &input[used..];
        }
        assert_eq!(empty, 4);
    }

    #[test]
    fn iac_iac_is_data_and_commands_vanish() {
        assert_eq!(lines(b"a\xff\xffb\xff\xf1c\n"), [b"a\xffbc".to_vec()]);
        assert_eq!(lines(b"abc\xff\xf7d\n"), [b"abc\x08d".to_vec()]);
    }

    #[test]
    fn telnet_commands_are_counted_for_flood_control() {
        let mut d = Decoder::new(512, true);
        // NOP, DO ECHO, SB..SE (one command), AYT; the escaped IAC IAC is data.
        let input = b"\xff\xf1\xff\xfd\x01\xff\xfa\x18x\xff\xf0a\xff\xffb\xff\xf6\n";
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (used, _) = d.decode(rest);
            rest = &rest[used..];
        }
        assert_eq!(d.take_commands(), 4);
        assert_eq!(d.take_commands(), 0);
    }

    #[test]
    fn subnegotiation_is_swallowed_even_unterminated() {
        assert_eq!(lines(b"\xff\xfa\x18\x00xterm\xff\xf0hi\n"), [b"hi"]);
        assert!(lines(b"\xff\xfa\x1fnever-ended\r\nhello\r\n").is_empty());
    }

    #[test]
    fn option_requests_are_refused_a_bounded_number_of_times() {
        let (_, replies, _) = run(&b"\xff\xfd\x01".repeat(10), 1, true);
        assert_eq!(replies, b"\xff\xfc\x01".repeat(3));
        let (_, replies, _) = run(&b"\xff\xfd\x06".repeat(5), 2, true);
        assert_eq!(
            replies,
            b"\xff\xfc\x06".repeat(5),
            "timing mark always answered"
        );
        // Many distinct options cannot grow the bookkeeping.
        let many: Vec<u8> = (0..=255u8).flat_map(|o| [IAC, DO, o]).collect();
        let (_, replies, _) = run(&many, 7, true);
        assert!(replies.len() <= 3 * (MAX_TRACKED + 1));
    }

    #[test]
    fn binary_mode_answers() {
        // WILL BINARY is the answer to our DO: silence.
        assert!(run(b"\xff\xfb\x00", 1, true).1.is_empty());
        // Unrequested, it is refused like anything else.
        assert_eq!(run(b"\xff\xfb\x00", 1, false).1, b"\xff\xfe\x00");
        // Withdrawn after agreeing: acknowledged once.
        assert_eq!(run(b"\xff\xfb\x00\xff\xfc\x00", 1, true).1, b"\xff\xfe\x00");
        // WONT without WILL: silence.
        assert!(run(b"\xff\xfc\x00", 1, true).1.is_empty());
    }

    #[test]
    fn long_lines_are_discarded_whole() {
        let mut input = vec![b'A'; 512];
        input.extend_from_slice(b"\n");
        input.extend(vec![b'B'; 513]);
        input.extend_from_slice(b"\nok\n");
        let (lines, _, too_long) = run(&input, 100, true);
        assert_eq!(lines, [vec![b'A'; 512], b"ok".to_vec()]);
        assert_eq!(too_long, 1);
    }

    #[test]
    fn a_megabyte_without_line_end_holds_one_line_of_memory() {
        let mut d = Decoder::new(512, true);
        let chunk = [b'x'; 4096];
        let mut notices = 0;
        for _ in 0..256 {
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let (used, event) = d.decode(rest);
                notices += usize::from(event == Some(TelnetEvent::TooLong));
                rest = &rest[used..];
            }
        }
        assert_eq!(notices, 1);
        assert!(d.line.capacity() <= 1024);
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn splitting_anywhere_changes_nothing() {
        let input = b"h\xc3\xa9\r\0two\r\nthree\xff\xfd\x01\xff\xfa\x18x\xff\xf0\n\rfour\xff\xff\r";
        let whole = run(input, input.len(), true);
        for chunk in 1..input.len() {
            assert_eq!(run(input, chunk, true), whole, "chunk {chunk}");
        }
        for cut in 0..input.len() {
            let mut d = Decoder::new(512, true);
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                let mut rest = part;
                while !rest.is_empty() {
                    let (used, event) = d.decode(rest);
                    if let Some(TelnetEvent::Line(l)) =
                        event.filter(|e| *e != TelnetEvent::Line(b""))
                    {
                        got.push(l.to_vec());
                    }
                    rest = &rest[used..];
                }
            }
            got.extend(d.finish().map(<[u8]>::to_vec));
            assert_eq!(got, whole.0, "cut at {cut}");
        }
    }

    mod properties {
        use super::super::*;
        use crate::sanitize::clean;
        use proptest::prelude::*;

        /// Bytes that exercise every path: telnet commands, line ends, UTF-8 lead bytes.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let byte = prop_oneof![
                4 => any::<u8>(),
                2 => prop::sample::select(vec![
                    IAC, DO, DONT, WILL, WONT, SB, SE, EC, EL, AYT, b'\r', b'\n', 0, 0x1b,
                    0x08, 0x7f, 0xc3, 0xe2, 0x80,
                ]),
                4 => prop::sample::select(b"ab \t@/".to_vec()),
            ];
            prop::collection::vec(byte, 0..2000)
        }

        /// Every line, sanitized, for `input` fed in the pieces `cuts` make; checks the
        /// buffer bound after every call.
        fn lines(input: &[u8], cuts: &[usize], max: usize) -> Vec<String> {
            let mut d = Decoder::new(max, true);
            let mut out = Vec::new();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            points.push(0);
            points.push(input.len());
            points.sort_unstable();
            for w in points.windows(2) {
                let mut rest = &input[w[0]..w[1]];
                while !rest.is_empty() {
                    let (used, event) = d.decode(rest);
                    assert!(used > 0 && used <= rest.len());
                    if let Some(TelnetEvent::Line(raw)) = event {
                        out.push(clean(raw));
                    }
                    assert!(d.line.len() <= max, "buffered {} > {max}", d.line.len());
                    rest = &rest[used..];
                }
            }
            out.extend(d.finish().map(clean));
            out
        }

        proptest! {
            #[test]
            fn split_anywhere_gives_the_same_lines(
                input in stream(),
                cuts in prop::collection::vec(any::<usize>(), 0..20),
            ) {
                prop_assert_eq!(lines(&input, &cuts, 64), lines(&input, &[], 64));
            }

            #[test]
            fn output_is_clean_text(input in stream()) {
                for line in lines(&input, &[], 512) {
                    prop_assert!(!line.chars().any(char::is_control), "{:?}", line);
                    prop_assert!(!line.contains(char::from(0x1b)), "{:?}", line);
                    prop_assert!(line.len() <= 512 * 4);
                }
            }
        }
    }
}
