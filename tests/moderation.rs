//! Bans, mutes, reserved and look-alike nicknames, `/report` and `natterctl watch`, through
//! natterctl and real TCP clients.

mod common;

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::admin::{Watch, ctl, ctl_fails, ctl_json};
use common::{BASE_CONFIG, Client, Daemon, Signal, TIMEOUT, text, unstamp};
use serde_json::Value;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The next line, without a timestamp.
fn line(c: &mut Client) -> String {
    unstamp(&c.line()).to_owned()
}

/// Asserts a new connection from `source` is turned away with `notice` before any greeting.
#[track_caller]
fn refused(d: &Daemon, source: &str, notice: &str) {
    let addr = if source.contains(':') {
        d.addrs[1]
    } else {
        d.addr()
    };
    let mut c = Client::connect_from(ip(source), addr);
    assert_eq!(c.line(), notice);
    c.expect_closed();
}

/// Asserts a new connection from `source` gets the greeting.
#[track_caller]
fn admitted(d: &Daemon, source: &str) -> Client {
    let addr = if source.contains(':') {
        d.addrs[1]
    } else {
        d.addr()
    };
    let mut c = Client::connect_from(ip(source), addr);
    c.expect_greeting();
    c
}

#[test]
fn an_address_ban_kicks_refuses_lists_and_lifts() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    let bob = Client::connect_from(ip("127.0.0.2"), d.addr());
    let mut bob = d.login_on(bob, "bob");
    alice.expect("* bob joined");

    let out = ctl(&d, &["ban", "127.0.0.2", "--for", "1h", "--reason", "spam"]);
    assert!(out.starts_with("banned 127.0.0.2 until "), "{out}");
    assert!(out.contains("disconnected: bob"), "{out}");
    let notice = bob.line();
    assert!(
        notice.starts_with("! you are banned: spam (until ") && notice.ends_with(" UTC)"),
        "{notice}"
    );
    bob.expect_closed();
    alice.expect("* bob was banned (spam)");

    // Back again: turned away before the greeting, with the same line.
    refused(&d, "127.0.0.2", &notice);
    // Other addresses are not affected.
    let carol = admitted(&d, "127.0.0.1");
    drop(carol);

    let listed = ctl(&d, &["bans"]);
    assert!(listed.contains("BANNED"), "{listed}");
    let row = listed.lines().find(|l| l.starts_with("127.0.0.2")).unwrap();
    assert!(row.contains("spam") && row.contains(" UTC"), "{row}");
    let bans = ctl_json(&d, &["bans"]);
    let ban = &bans["bans"][0];
    assert_eq!(ban["target"], "127.0.0.2");
    assert_eq!(ban["reason"], "spam");
    assert_eq!(ban["set_by"], rustix::process::getuid().as_raw());
    assert!(ban["set_at"].is_string() && ban["expires"].is_string());

    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["refused"]["banned"], 1);
    assert_eq!(stats["bans"], 1);
    d.wait_log("connection refused cause=\"banned\"");

    assert_eq!(ctl(&d, &["unban", "127.0.0.2"]), "unbanned 127.0.0.2\n");
    admitted(&d, "127.0.0.2");
    let (code, err) = ctl_fails(&d, &["unban", "127.0.0.2"]);
    assert_eq!(code, 1);
    assert!(err.contains("no ban on 127.0.0.2"), "{err}");
}

#[test]
fn cidr_ranges_match_ipv4_and_ipv6() {
    let d = Daemon::with_config(
        "[server]\nlisten = [\"127.0.0.1:0\", \"[::1]:0\"]\n[chat]\ntimestamps = false\n",
    );
    let out = ctl(&d, &["ban", "127.0.0.8/30", "--reason", "range"]);
    // Normalized to the range's first address; no end.
    assert_eq!(out, "banned 127.0.0.8/30 until lifted\n");
    for source in ["127.0.0.8", "127.0.0.11"] {
        refused(&d, source, "! you are banned: range");
    }
    for source in ["127.0.0.7", "127.0.0.12", "::1"] {
        admitted(&d, source);
    }
    ctl(&d, &["ban", "::/120"]);
    refused(&d, "::1", "! you are banned");
    admitted(&d, "127.0.0.1");
    ctl(&d, &["unban", "0::0/120"]);
    admitted(&d, "::1");

    // Bad targets and durations are refused with a reason.
    let (code, err) = ctl_fails(&d, &["ban", "127.0.0.0/33"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not a valid address range: 127.0.0.0/33"),
        "{err}"
    );
    let (code, err) = ctl_fails(&d, &["ban", "two words"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not an address, range or valid nickname"),
        "{err}"
    );
    let (code, err) = ctl_fails(&d, &["ban", "x", "--for", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("e.g. 30s, 10m, 2h, 7d"), "{err}");
}

#[test]
fn a_nickname_ban_covers_every_look_alike() {
    let d = Daemon::start();
    let [mut alice, mut mallory] = d.room(["alice", "Mallory"]);
    let out = ctl(&d, &["ban", "mallory", "--reason", "trolling"]);
    assert!(out.contains("disconnected: Mallory"), "{out}");
    mallory.expect("! you are banned: trolling");
    mallory.expect_closed();
    alice.expect("* Mallory was banned (trolling)");
    for nick in ["mallory", "MALLORY", "ｍａｌｌｏｒｙ"] {
        let mut c = d.connect();
        c.expect_greeting();
        c.say(nick);
        c.expect("! you are banned: trolling");
        c.expect_closed();
    }
    // Nobody saw them come or go.
    alice.say("/ls");
    alice.expect("* 1 online in #lobby: alice");
    assert_eq!(ctl_json(&d, &["stats"])["refused"]["banned_nick"], 3);
}

#[test]
fn bans_and_mutes_survive_a_restart() {
    let mut d = Daemon::start();
    ctl(&d, &["ban", "127.0.0.2", "--reason", "spam"]);
    ctl(&d, &["ban", "eve", "--for", "7d"]);
    ctl(
        &d,
        &["mute", "trent", "--for", "2h", "--reason", "shouting"],
    );
    let file = d.state_dir().join("bans.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(d.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);

    d.restart();
    d.wait_log("bans and mutes loaded");
    assert!(d.log().contains("bans=2 mutes=1"), "{}", d.log());
    refused(&d, "127.0.0.2", "! you are banned: spam");
    let mut c = d.connect();
    c.expect_greeting();
    c.say("Eve");
    let notice = c.line();
    assert!(notice.starts_with("! you are banned (until "), "{notice}");
    c.expect_closed();
    let mut trent = d.login("trent");
    trent.say("hello?");
    let refusal = trent.line();
    assert!(refusal.starts_with("! you are muted (until "), "{refusal}");
    let bans = ctl_json(&d, &["bans"]);
    assert_eq!(bans["bans"].as_array().unwrap().len(), 2);
    assert_eq!(bans["mutes"][0]["reason"], "shouting");
}

#[test]
fn a_corrupt_or_unreadable_ban_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let config = dir.path().join("natter.toml");
    std::fs::write(
        &config,
        format!(
            "{BASE_CONFIG}[admin]\nsocket = {:?}\n",
            dir.path().join("admin.sock").display().to_string()
        ),
    )
    .unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_natterd"))
            .arg("--config")
            .arg(&config)
            .env("STATE_DIRECTORY", &state)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    std::fs::write(
        state.join("bans.json"),
        "{\"bans\": [{\"target\": \"1.2.3.4\"",
    )
    .unwrap();
    let out = start();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("bans.json is corrupt; fix or remove it"),
        "{err}"
    );
    assert!(err.contains("line 1"), "{err}");
    // A bad entry is as bad as bad JSON.
    std::fs::write(
        state.join("bans.json"),
        "{\"bans\": [{\"target\": \"a b\"}]}",
    )
    .unwrap();
    assert_eq!(start().status.code(), Some(1));
    // Something there that cannot be read.
    std::fs::remove_file(state.join("bans.json")).unwrap();
    std::fs::create_dir(state.join("bans.json")).unwrap();
    let out = start();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
    // The file was left alone either way.
    assert!(state.join("bans.json").is_dir());
    // A state directory someone else owns is not used.
    std::fs::remove_dir(state.join("bans.json")).unwrap();
    if let Err(e) = std::os::unix::fs::chown(&state, Some(4321), None) {
        eprintln!("skipping the foreign-owner check: cannot chown ({e}); needs root");
        return;
    }
    let out = start();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("belongs to uid 4321"), "{err}");
}

#[test]
fn short_bans_and_mutes_end_on_time() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let reply = ctl_json(&d, &["mute", "BOB", "--for", "2s", "--reason", "calm down"]);
    assert_eq!(reply["nick"], "BOB");
    assert_eq!(reply["online"], true);
    let notice = line(&mut bob);
    assert!(
        notice.starts_with("! you are muted: calm down (until "),
        "{notice}"
    );
    bob.say("hello");
    let refusal = line(&mut bob);
    assert!(refusal.starts_with("! you are muted (until "), "{refusal}");
    bob.say("@alice psst");
    assert_eq!(line(&mut bob), refusal);
    // Reading and commands still work.
    bob.say("/ls");
    bob.expect("* 2 online in #lobby: alice, bob");
    ctl(&d, &["ban", "127.0.0.2", "--for", "2s"]);
    refused(&d, "127.0.0.2", &{
        let bans = ctl_json(&d, &["bans"]);
        let until = bans["bans"][0]["expires"].as_str().unwrap().to_owned();
        let until = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
        format!(
            "! you are banned (until {})",
            until.format("%Y-%m-%d %H:%M:%S UTC")
        )
    });

    // Wait for the end the reply named, then a little: both have ended by themselves.
    let expires: chrono::DateTime<chrono::Utc> =
        reply["expires"].as_str().unwrap().parse().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while chrono::Utc::now() <= expires + chrono::TimeDelta::milliseconds(1100) {
        assert!(Instant::now() < deadline, "mute never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    bob.say("hello again");
    alice.expect("<bob> hello again");
    admitted(&d, "127.0.0.2");
    // The sweep takes them out of the file and says so.
    d.wait_log("expired kind=\"mute\" target=BOB");
    d.wait_log("expired kind=\"ban\" target=127.0.0.2");
    let bans = ctl_json(&d, &["bans"]);
    assert_eq!(bans["bans"], Value::Array(vec![]));
    assert_eq!(bans["mutes"], Value::Array(vec![]));
}

#[test]
fn mutes_follow_the_nickname_and_lift() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    // Muted before they even arrive.
    let out = ctl(&d, &["mute", "bob"]);
    assert_eq!(out, "muted bob until lifted (not online)\n");
    let mut bob = d.login("Bob");
    alice.expect("* Bob joined");
    bob.say("hi");
    bob.expect("! you are muted");
    bob.say("/quit");
    bob.expect("* bye, Bob");
    // Reconnecting changes nothing.
    let mut bob = d.login("bob");
    bob.say("hi");
    bob.expect("! you are muted");
    assert_eq!(ctl(&d, &["unmute", "BOB"]), "unmuted bob\n");
    bob.expect("* you are no longer muted");
    bob.say("hi");
    alice.expect("* Bob left");
    alice.expect("* bob joined");
    alice.expect("<bob> hi");
    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["muted_messages"], 2);
    let (code, err) = ctl_fails(&d, &["unmute", "bob"]);
    assert_eq!(code, 1);
    assert!(err.contains("no mute on bob"), "{err}");
    let (code, err) = ctl_fails(&d, &["mute", "10.0.0.1"]);
    assert_eq!(code, 1);
    assert!(err.contains("not a valid nickname"), "{err}");
}

#[test]
fn reserved_and_look_alike_nicknames_are_refused() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    let mut c = d.connect();
    c.expect_greeting();
    for nick in ["admin", "ROOT", "ｓｙｓｔｅｍ"] {
        c.say(nick);
        c.expect(&format!("! nickname reserved: {nick}"));
        c.expect("Choose a nickname (up to 16 characters):");
    }
    for nick in ["Ａlice", "ALICE", "ａｌｉｃｅ"] {
        c.say(nick);
        c.expect(&format!("! nickname already taken: {nick}"));
        c.expect("Choose a nickname (up to 16 characters):");
    }
    // The list is the operator's: a reload changes it for the next login.
    let config = std::fs::read_to_string(&d.config).unwrap();
    let config = config.replace(
        "timestamps = false\n",
        "timestamps = false\nreserved_nicks = [\"boss\"]\n",
    );
    std::fs::write(&d.config, config).unwrap();
    ctl(&d, &["reload"]);
    c.say("boss");
    c.expect("! nickname reserved: boss");
    c.expect("Choose a nickname (up to 16 characters):");
    c.say("admin");
    assert!(line(&mut c).starts_with("* welcome, admin! "));
    alice.expect("* admin joined");
}

#[test]
fn reports_reach_a_running_watch_with_kicks_and_joins() {
    let d = Daemon::start();
    let mut watch = Watch::start(&d, true);
    let mut people = Watch::start(&d, false);
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let join = watch.event("join");
    assert_eq!(join["nick"], "alice");
    assert!(join["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    alice.say("/report bob spamming links");
    alice.expect("* report about bob sent to the operators");
    let report = watch.event("report");
    assert_eq!(report["from"], "alice");
    assert_eq!(report["about"], "bob");
    assert_eq!(report["reason"], "spamming links");
    assert_eq!(report["online"], true);
    d.wait_log("report from=\"alice\" about=\"bob\" online=true reason=\"spamming links\"");
    // The human form names the same things on one line.
    let seen = loop {
        let line = people.line();
        if line.contains(" report ") {
            break line;
        }
    };
    assert!(seen.contains("about=bob from=alice"), "{seen}");
    assert!(seen.contains("reason=\"spamming links\""), "{seen}");

    ctl(&d, &["kick", "bob", "--reason", "reported"]);
    let kick = watch.event("kick");
    assert_eq!(kick["nick"], "bob");
    assert_eq!(kick["reason"], "reported");
    let leave = watch.event("leave");
    assert_eq!(
        (&leave["nick"], &leave["reason"]),
        (&"bob".into(), &"kicked".into())
    );
    bob.expect("! you were kicked: reported");
    alice.expect("* bob was kicked (reported)");

    ctl(&d, &["ban", "10.9.0.0/16", "--for", "10m"]);
    let ban = watch.event("ban");
    assert_eq!(ban["target"], "10.9.0.0/16");
    assert!(ban["expires"].is_string());
    ctl(&d, &["mute", "carol"]);
    assert_eq!(watch.event("mute")["nick"], "carol");
    ctl(&d, &["reload"]);
    watch.event("reload");

    // Usage, unknown users and the pace limit.
    alice.say("/report bob");
    alice.expect("! usage: /report nick reason");
    alice.say("/report nobody was rude earlier");
    alice.expect("* report about nobody sent to the operators");
    assert_eq!(watch.event("report")["online"], false);
    alice.say("/report bob again");
    alice.expect("* report about bob sent to the operators");
    alice.say("/report bob and again");
    let limited = line(&mut alice);
    assert!(
        limited.starts_with("! too many reports; try again in "),
        "{limited}"
    );
    assert_eq!(ctl_json(&d, &["stats"])["reports"], 3);
}

#[test]
fn watch_shows_flood_and_slow_readers_and_ends_at_shutdown() {
    let mut d = Daemon::with_config(&format!(
        "{BASE_CONFIG}max_line_bytes = 65536\n[limits]\nsend_queue_bytes = 131072\n\
         flood_rate = 50\nflood_burst = 2\n"
    ));
    let mut watch = Watch::start(&d, true);
    let [mut alice, mut bob, mut slow] = d.room(["alice", "bob", "slow"]);
    alice.send("1\r\n2\r\n3\r\n4\r\n");
    let flood = watch.event("flood");
    assert_eq!(flood["nick"], "alice");
    for n in 1..=4 {
        bob.expect(&format!("<alice> {n}"));
    }
    // slow stops reading until its queue overflows, then catches up and is told.
    let big = "x".repeat(60_000);
    let mut behind = false;
    for i in 0..1000 {
        alice.say(&format!("{i} {big}"));
        assert_eq!(bob.line(), format!("<alice> {i} {big}"));
        let list = ctl_json(&d, &["list"]);
        let conns = list["connections"].as_array().unwrap();
        let me = conns.iter().find(|c| c["nick"] == "slow").unwrap();
        if me["skipped"].as_u64().unwrap() > 0 {
            behind = true;
            break;
        }
    }
    assert!(behind, "slow never fell behind");
    for _ in 0..2000 {
        if slow.line().contains("messages skipped") {
            break;
        }
    }
    let event = watch.event("slow_reader");
    assert_eq!(event["nick"], "slow");
    assert!(event["skipped"].as_u64().unwrap() > 0);

    d.signal(Signal::TERM);
    watch.event("shutdown");
    let status = watch.child.wait().unwrap();
    assert!(status.success());
    assert_eq!(d.wait_exit(), Some(0));
}

#[test]
fn a_ban_that_cannot_be_saved_changes_nothing() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    // Something natterd cannot replace where the file goes.
    std::fs::create_dir_all(d.state_dir().join("bans.json")).unwrap();
    let (code, err) = ctl_fails(&d, &["ban", "alice"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot save") && err.contains("nothing changed"),
        "{err}"
    );
    assert_eq!(ctl_json(&d, &["bans"])["bans"], Value::Array(vec![]));
    // alice is still there.
    alice.say("/ls");
    alice.expect("* 1 online in #lobby: alice");
    d.wait_log("cannot save bans and mutes");
}

#[test]
fn a_watcher_that_does_not_read_loses_events_not_the_server() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let d = Daemon::start();
    let mut watcher = UnixStream::connect(&d.socket).unwrap();
    watcher.write_all(b"{\"cmd\":\"watch\"}\n").unwrap();
    watcher.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut first = [0; 28];
    watcher.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"{\"ok\":true,\"watching\":true}\n");
    // Far more events than the channel and the socket buffer hold, while it reads nothing:
    // every connection from a banned address is one "refused" event.
    ctl(&d, &["ban", "127.0.0.2"]);
    let deadline = Instant::now() + TIMEOUT * 3;
    for _ in 0..6000 {
        assert!(Instant::now() < deadline, "connections too slow");
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into())
            .unwrap();
        // The server closes first, so the TIME-WAIT stays on its side.
        socket.connect_timeout(&d.addr().into(), TIMEOUT).unwrap();
        let mut c = std::net::TcpStream::from(socket);
        let mut sink = Vec::new();
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        let _ = c.read_to_end(&mut sink);
    }
    // Chat goes on meanwhile.
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    alice.say("@bob still here");
    bob.expect("[alice -> bob] still here");
    // The watcher now reads: what fit, then how many it missed, then live events again.
    let mut reader = BufReader::new(watcher);
    let mut missed = 0;
    let mut line = String::new();
    let deadline = Instant::now() + TIMEOUT;
    while missed == 0 {
        assert!(Instant::now() < deadline, "no lagged event");
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "watch closed");
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["event"] == "lagged" {
            missed = event["missed"].as_u64().unwrap();
        }
    }
    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["refused"]["banned"], 6000);
}

#[test]
fn watchers_are_capped_and_leave_room_for_commands() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    let d = Daemon::start();
    let watch = || {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.write_all(b"{\"cmd\":\"watch\",\"id\":1}\n").unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (reader, line)
    };
    // More watchers than the 8 admin places, all answered.
    let watchers: Vec<_> = (0..16)
        .map(|_| {
            let (reader, line) = watch();
            assert_eq!(line, "{\"id\":1,\"ok\":true,\"watching\":true}\n");
            reader
        })
        .collect();
    let (_, refused) = watch();
    assert!(
        refused.contains("\"code\":\"too_many_watchers\""),
        "{refused}"
    );
    // Commands still get through, and every watcher sees what they do.
    ctl(&d, &["wall", "hello"]);
    ctl(&d, &["mute", "x"]);
    for mut reader in watchers {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains("\"event\":\"mute\""), "{line}");
    }
}

#[test]
fn a_watcher_that_stops_reading_is_dropped() {
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    let d = Daemon::start();
    let mut watcher = UnixStream::connect(&d.socket).unwrap();
    watcher.write_all(b"{\"cmd\":\"watch\"}\n").unwrap();
    // Events until its socket buffer is full and natterd's write waits.
    ctl(&d, &["ban", "127.0.0.3"]);
    let deadline = Instant::now() + TIMEOUT * 3;
    for _ in 0..4000 {
        assert!(Instant::now() < deadline, "connections too slow");
        let mut c = Client::connect_from(ip("127.0.0.3"), d.addr());
        c.expect("! you are banned");
        c.expect_closed();
    }
    // natterd gives up on it 10 s after its write began to wait.
    d.wait_log_within("watcher dropped: it stopped reading", TIMEOUT * 3);
    drop(watcher);
    // Commands and new watchers carry on.
    Watch::start(&d, true);
}
