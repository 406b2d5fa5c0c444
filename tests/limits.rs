//! Limits, flood control and slow readers: what one hostile or broken client can do, and
//! that everyone else keeps chatting.

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use common::{BASE_CONFIG, Client, Daemon, barrier, text};
use serde_json::Value;

fn stats(d: &Daemon) -> Value {
    serde_json::from_slice(&d.ctl(&["--json", "stats"]).stdout).unwrap()
}

fn connection<'a>(list: &'a Value, nick: &str) -> &'a Value {
    let conns = list["connections"].as_array().unwrap();
    conns.iter().find(|c| c["nick"] == nick).expect("listed")
}

/// A client connecting from another loopback address.
fn connect_from(source: [u8; 4], to: SocketAddr) -> Client {
    Client::connect_from(source.into(), to)
}

#[test]
fn a_full_server_says_so() {
    let d = Daemon::with_config(&format!("{BASE_CONFIG}[limits]\nmax_clients = 2\n"));
    let [mut a, _b] = d.room(["alice", "bob"]);
    let mut c = d.connect();
    c.expect("! server full");
    c.expect_closed();
    assert_eq!(stats(&d)["refused"]["server_full"], 1);
    d.wait_log("connection refused cause=\"server_full\"");
    // The others did not notice.
    a.say("/ls");
    a.expect("* 2 online in #lobby: alice, bob");
}

#[test]
fn one_address_gets_only_so_many_connections() {
    let d = Daemon::with_config(&format!("{BASE_CONFIG}[limits]\nmax_clients_per_ip = 2\n"));
    let _two = d.room(["alice", "bob"]);
    let mut third = d.connect();
    third.expect("! too many connections from your address");
    third.expect_closed();
    // Another address is still welcome.
    let mut other = connect_from([127, 0, 0, 2], d.addr());
    other.expect_greeting();
    assert_eq!(stats(&d)["refused"]["too_many_from_address"], 1);
    // A place freed is a place regained, once natterd has seen the client go.
    drop(_two);
    let deadline = Instant::now() + common::TIMEOUT;
    while stats(&d)["connections"] != 1 {
        assert!(Instant::now() < deadline, "places never freed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut again = d.connect();
    again.expect_greeting();
}

#[test]
fn login_and_idle_timeouts() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nlogin_timeout = 1\nidle_timeout = 2\n"
    ));
    let mut lurker = d.connect();
    lurker.expect_greeting();
    lurker.expect("! login timeout: no nickname after 1 s");
    lurker.expect_closed();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    // alice keeps talking, bob goes quiet.
    let start = Instant::now();
    let mut said = 0;
    loop {
        alice.say(&format!("still here {said}"));
        let line = bob.line();
        if line == "! idle timeout: nothing sent for 2 s" {
            break;
        }
        assert_eq!(line, format!("<alice> still here {said}"));
        said += 1;
        // Pace alice's lines on bob's: each round trip is one line.
        assert!(start.elapsed() < common::TIMEOUT, "bob never timed out");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bob.expect_closed();
    // Some of alice's lines may still be on their way; bob's leaving follows them.
    loop {
        let line = alice.line();
        if line == "* bob left" {
            break;
        }
    }
    let dropped = &stats(&d)["dropped"];
    assert_eq!(dropped["login_timeout"], 1);
    assert_eq!(dropped["idle_timeout"], 1);
}

#[test]
fn a_paste_arrives_whole_and_paced_and_others_are_not_held_up() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nflood_burst = 5\nflood_rate = 10\n"
    ));
    let [mut flooder, mut bob, mut carol] = d.room(["flooder", "bob", "carol"]);
    let paste: String = (0..30).map(|i| format!("pasted line {i}\r\n")).collect();
    let start = Instant::now();
    flooder.send(&paste);
    flooder.expect("! slow down: 10 lines per second at most");
    bob.expect("<flooder> pasted line 0");
    // While the paste is held back, carol's private message goes straight through.
    carol.say("@bob not stuck behind the paste");
    let mut next = 1;
    let mut got_whisper_at = None;
    while next < 30 {
        let line = bob.line();
        if line == "[carol -> bob] not stuck behind the paste" {
            got_whisper_at = Some(next);
            continue;
        }
        assert_eq!(line, format!("<flooder> pasted line {next}"));
        next += 1;
    }
    let at = got_whisper_at.expect("the private message arrived during the paste");
    assert!(
        at < 25,
        "the private message waited for the paste (after line {at})"
    );
    // 25 lines beyond the burst at 10 per second cannot take less than 2.4 s.
    assert!(
        start.elapsed().as_secs_f64() >= 2.4,
        "not paced: {:?}",
        start.elapsed()
    );
    // Told once for the whole paste.
    let mut next = 0;
    while next < 30 {
        let line = carol.line();
        if line != "[carol -> bob] not stuck behind the paste" {
            assert_eq!(line, format!("<flooder> pasted line {next}"));
            next += 1;
        }
    }
    barrier(&mut carol, "carol", &mut flooder, "flooder");
}

/// A room with a user whose socket buffers are full, and how many 60 KB lines it took.
fn room_with_a_slow_reader(extra: &str) -> (Daemon, [Client; 3]) {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}max_line_bytes = 65536\n[limits]\nsend_queue_bytes = 131072\n{extra}"
    ));
    let [mut alice, mut bob, slow] = d.room(["alice", "bob", "slow"]);
    let big = "x".repeat(60_000);
    for i in 0..1000 {
        alice.say(&format!("{i} {big}"));
        assert_eq!(bob.line(), format!("<alice> {i} {big}"));
        let list: Value = serde_json::from_slice(&d.ctl(&["--json", "list"]).stdout).unwrap();
        if connection(&list, "slow")["skipped"].as_u64().unwrap() > 0 {
            return (d, [alice, bob, slow]);
        }
    }
    panic!("slow never fell behind");
}

#[test]
fn a_slow_reader_misses_group_messages_and_is_told_how_many() {
    let (d, [mut alice, mut bob, mut slow]) = room_with_a_slow_reader("");
    // Everyone else carries on.
    alice.say("@bob still quick");
    bob.expect("[alice -> bob] still quick");
    let skipped = stats(&d)["skipped_messages"].as_u64().unwrap();
    assert!(skipped >= 1);
    // The slow reader catches up: everything that fit, then the count of what did not.
    let mut skipped_note = None;
    for _ in 0..2000 {
        let line = slow.line();
        if line.starts_with('!') {
            skipped_note = Some(line);
            break;
        }
    }
    let note = skipped_note.expect("a note about skipped messages");
    let n: u64 = note
        .strip_prefix("! ")
        .and_then(|r| r.strip_suffix(" messages skipped (you are reading too slowly)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{note:?}"));
    assert!(n >= skipped, "told {n}, counted {skipped} before");
    // Caught up, it gets new lines again.
    alice.say("welcome back");
    slow.expect("<alice> welcome back");
    d.wait_log("group messages skipped for a slow reader skipped=");
}

#[test]
fn a_private_message_that_cannot_fit_disconnects_the_slow_reader() {
    let (d, [mut alice, mut bob, _slow]) = room_with_a_slow_reader("");
    alice.say(&format!("@slow {}", "y".repeat(60_000)));
    alice.line(); // its own copy
    bob.expect("* slow left");
    d.wait_log("reason=\"send_queue_full\"");
    assert_eq!(stats(&d)["dropped"]["send_queue_full"], 1);
}

#[test]
fn a_client_that_takes_no_bytes_hits_the_write_timeout() {
    let (d, [mut alice, mut bob, _slow]) = room_with_a_slow_reader("write_timeout = 1\n");
    // Nothing goes out to slow any more; within a second or so it is dropped.
    let start = Instant::now();
    loop {
        alice.say("tick");
        let line = bob.line();
        if line == "* slow left" {
            break;
        }
        assert_eq!(line, "<alice> tick");
        assert!(start.elapsed() < common::TIMEOUT, "never dropped");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.wait_log("reason=\"write_timeout\"");
    assert_eq!(stats(&d)["dropped"]["write_timeout"], 1);
}

#[test]
fn garbage_spewers_do_not_slow_the_others() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    std::thread::scope(|s| {
        for seed in 1..=20u32 {
            let addr = d.addr();
            s.spawn(move || {
                let mut c = Client::connect(addr);
                let mut state = seed;
                let junk: Vec<u8> = (0..200_000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        state as u8
                    })
                    .collect();
                c.send_ignoring_errors(&junk);
            });
        }
        // Spewers log in with garbage nicknames and say garbage; skip what they say.
        let chat = |c: &mut Client| loop {
            let line = c.line();
            if line.starts_with("<alice> ") || line.starts_with("[bob -> alice] ") {
                return line;
            }
        };
        for i in 0..50 {
            alice.say(&format!("hello {i}"));
            assert_eq!(chat(&mut bob), format!("<alice> hello {i}"));
            bob.say(&format!("@alice reply {i}"));
            assert_eq!(chat(&mut alice), format!("[bob -> alice] reply {i}"));
            assert_eq!(chat(&mut bob), format!("[bob -> alice] reply {i}"));
        }
    });
    let out = d.ctl(&["stats"]);
    assert!(text(&out.stdout).contains("users_online: 2"));
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    use rustix::process::{Pid, Resource, Rlimit, getrlimit, prlimit};
    let d = Daemon::start();
    let mut alice = d.login("alice");
    let pid = Pid::from_raw(d.pid() as i32).unwrap();
    let open = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count() as u64;
    // natterd inherited ours.
    let old = getrlimit(Resource::Nofile);
    // Room for three more connections, then accept fails with EMFILE.
    let tight = Rlimit {
        current: Some(open + 3),
        maximum: old.maximum,
    };
    prlimit(Some(pid), Resource::Nofile, tight).expect("lower natterd's limit");
    let mut clients: Vec<Client> = (0..6).map(|_| d.connect()).collect();
    for c in &mut clients[..3] {
        c.expect_greeting();
    }
    d.wait_log("accept failed");
    // natterd still serves the connections it has.
    alice.say("/ls");
    alice.expect("* 1 online in #lobby: alice");
    // With the limit back, the waiting connections are served.
    prlimit(Some(pid), Resource::Nofile, old).expect("restore natterd's limit");
    for c in &mut clients[3..] {
        c.expect_greeting();
    }
}
