//! Telnet and netcat behaviour on the wire, and what hostile clients can't do.

mod common;

use common::{Client, Daemon, barrier};

#[test]
fn binary_mode_request_can_be_turned_off() {
    let d = Daemon::with_config(
        "[server]\nlisten = [\"127.0.0.1:0\"]\ntelnet_binary = false\n[chat]\ntimestamps = false\n",
    );
    let mut c = d.connect();
    let banner = c.line();
    assert!(banner.starts_with("Welcome to natter"), "{banner:?}");
    // Unasked, WILL BINARY is refused like any other offer.
    c.send(b"\xff\xfb\x00");
    c.expect("Choose a nickname (up to 16 characters):");
    assert_eq!(c.bytes(3), b"\xff\xfe\x00");
}

#[test]
fn are_you_there_is_answered_at_most_once_a_second() {
    let d = Daemon::start();
    let mut a = d.login("alice");
    a.send(b"\xff\xf6\xff\xf6\xff\xf6/ls\r\n");
    assert_eq!(a.bytes(9), b"\r\n[Yes]\r\n");
    a.expect("* 1 online in #lobby: alice");
}

#[test]
fn line_ends_split_across_reads() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    // Each piece is sent only once the previous one took effect, so each arrives in a read
    // of its own; a bare CR must end its line without waiting for the next byte.
    for (part, want) in [
        (&b"one\r"[..], "one"),
        (b"\ntwo\r", "two"),
        (b"\0three\n", "three"),
        (b"\rfour\r", "four"),
    ] {
        a.send(part);
        b.expect(&format!("<alice> {want}"));
    }
    // The LF completing the last CR is no second line end.
    a.send(b"\n");
    barrier(&mut a, "alice", &mut b, "bob");
}

#[test]
fn ctrl_c_in_telnet_gets_its_timing_mark_and_output_goes_on() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    // inetutils telnet's Ctrl-C: IAC IP IAC DO TM. It shows nothing until WONT TM arrives.
    a.send(b"\xff\xf4\xff\xfd\x06");
    assert_eq!(a.bytes(3), b"\xff\xfc\x06");
    b.say("still here");
    a.expect("<bob> still here");
}

#[test]
fn hostile_bytes_leave_other_screens_clean() {
    let d = Daemon::with_config(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[chat]\ntimestamps = false\nmax_line_bytes = 4096\n[limits]\nsend_queue_bytes = 67108864\n",
    );
    let [mut watcher, mut evil] = d.room(["watcher", "evil"]);
    // A fixed pseudo-random stream, heavy in the bytes that matter.
    let mut state: u32 = 12345;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let special = b"\x1b\x9b\x9d\x07\r\n\x00\x08\x7f\xff\xc2\xe2\x80\xae[]";
    let mut stream = Vec::new();
    for _ in 0..200_000 {
        let r = next();
        stream.push(if r % 3 == 0 {
            special[(r >> 8) as usize % special.len()]
        } else {
            (r >> 8) as u8
        });
    }
    stream.extend_from_slice(b"\xff\xf0\r\n");
    evil.send(&stream);
    evil.send(b"\r\nthe end\r\n");
    let mut seen = 0;
    loop {
        let line = watcher.line();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        for bad in ['\u{202e}', '\u{200b}', '\u{feff}', '\u{2066}'] {
            assert!(!line.contains(bad), "{line:?}");
        }
        if line == "<evil> the end" {
            break;
        }
        seen += 1;
        assert!(seen < 200_000, "never saw the end");
    }
    // Everyone else can still talk.
    let mut other = d.login("other");
    watcher.expect("* other joined");
    other.say("fine");
    watcher.expect("<other> fine");
}

#[test]
fn a_megabyte_without_a_line_end_is_refused_once() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    let junk = vec![b'z'; 1 << 20];
    a.send(&junk);
    a.send(b"\nafter\n");
    a.expect("! line too long (max 512 bytes)");
    b.expect("<alice> after");
    a.say("/ls");
    a.expect("* 2 online in #lobby: alice, bob");
}

#[test]
fn listens_on_ipv4_and_ipv6_loopback() {
    let d = Daemon::with_config(
        "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[chat]\ntimestamps = false\n",
    );
    assert_eq!(d.addrs.len(), 2);
    assert!(d.addrs[1].is_ipv6());
    let mut a = d.login("alice");
    let mut b = Client::connect(d.addrs[1]);
    b.expect_greeting();
    b.say("bob");
    assert!(b.line().starts_with("* welcome, bob! 2 users"));
    a.expect("* bob joined");
}
