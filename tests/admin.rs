//! Operators: natterctl and raw JSON over the admin socket, signals, reload and shutdown,
//! all against a real natterd.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};

use common::{BASE_CONFIG, Daemon, Signal, natterctl, text};
use serde_json::Value;

/// Sends raw request lines and returns one parsed reply per line.
fn raw(d: &Daemon, requests: &[&str]) -> Vec<Value> {
    let stream = UnixStream::connect(&d.socket).expect("connect admin socket");
    stream.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    requests
        .iter()
        .map(|request| {
            writer.write_all(request.as_bytes()).unwrap();
            writer.write_all(b"\n").unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).expect("a reply");
            serde_json::from_str(&line).expect("JSON reply")
        })
        .collect()
}

#[test]
fn list_in_both_output_modes() {
    let d = Daemon::start();
    let [_alice, mut bob] = d.room(["alice", "bob"]);
    bob.say("/i");
    bob.line();
    let mut lurker = d.connect();
    lurker.expect_greeting();

    let out = d.ctl(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].starts_with("ID  NICK"), "{table}");
    let ignore = rows[0].find("IGNORE").unwrap();
    assert!(rows[1].contains(" alice "), "{table}");
    assert!(rows[2].contains(" bob "), "{table}");
    assert_eq!(&rows[2][ignore..ignore + 3], "yes", "{table}");
    assert!(rows[3].contains(" - "), "{table}");

    let out = d.ctl(&["--json", "list"]);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["ok"], true);
    let conns = reply["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 3);
    assert_eq!(conns[0]["nick"], "alice");
    assert_eq!(conns[1]["ignoring"], true);
    assert_eq!(conns[1]["lines"], 2);
    assert!(conns[2]["nick"].is_null());
    for key in [
        "id",
        "peer",
        "since",
        "idle_secs",
        "bytes_in",
        "bytes_out",
        "queue_bytes",
    ] {
        assert!(!conns[0][key].is_null(), "{key} missing");
    }
    assert!(conns[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
}

#[test]
fn kick_as_seen_by_everyone() {
    let d = Daemon::start();
    let [mut alice, mut bob, mut carol] = d.room(["alice", "bob", "carol"]);
    let out = d.ctl(&["kick", "BOB", "--reason", "spam"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "kicked bob\n");
    bob.expect("! you were kicked: spam");
    bob.expect_closed();
    alice.expect("* bob was kicked (spam)");
    carol.expect("* bob was kicked (spam)");
    // Without a reason.
    let out = d.ctl(&["--json", "kick", "carol"]);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["nick"], "carol");
    carol.expect("! you were kicked");
    carol.expect_closed();
    alice.expect("* carol was kicked");
    // Nobody by that name.
    let out = d.ctl(&["kick", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "natterctl: no such user: nobody\n");
    let out = d.ctl(&["--json", "kick", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["error"]["code"], "not_found");
    d.wait_log("reason=\"kicked\"");
    let stats: Value = serde_json::from_slice(&d.ctl(&["--json", "stats"]).stdout).unwrap();
    assert_eq!(stats["kicks"], 2);
}

#[test]
fn wall_reaches_everyone_even_in_ignore_mode() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    bob.say("/i");
    bob.line();
    let out = d.ctl(&["wall", "maintenance", "at", "noon"]);
    assert_eq!(text(&out.stdout), "sent to 2 user(s)\n");
    alice.expect("* [server] maintenance at noon");
    bob.expect("* [server] maintenance at noon");
    let reply = raw(&d, &[r#"{"cmd":"wall","text":"\u001b[2Jclean"}"#]);
    assert_eq!(reply[0]["recipients"], 2);
    alice.expect("* [server] clean");
}

#[test]
fn stats_in_both_output_modes() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    alice.say("hello");
    bob.expect("<alice> hello");
    let out = d.ctl(&["stats"]);
    let lines = text(&out.stdout);
    for key in [
        "version",
        "uptime_secs",
        "listen",
        "users_online",
        "peak_users",
        "accepted",
        "lines_relayed",
        "bytes_in",
        "bytes_out",
        "kicks",
        "refused",
        "dropped",
    ] {
        assert!(
            lines.contains(&format!("\n{key}: ")) || lines.starts_with(&format!("{key}: ")),
            "{key}: {lines}"
        );
    }
    assert!(lines.contains("users_online: 2\n"), "{lines}");
    let reply: Value = serde_json::from_slice(&d.ctl(&["--json", "stats"]).stdout).unwrap();
    assert_eq!(reply["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(reply["accepted"], 2);
    assert_eq!(reply["lines_relayed"], 1);
    assert_eq!(reply["peak_users"], 2);
    assert_eq!(reply["listen"][0], d.addr().to_string());
    assert!(reply["bytes_out"].as_u64().unwrap() > 0);
}

#[test]
fn raw_json_requests_and_bad_ones() {
    let d = Daemon::start();
    let replies = raw(
        &d,
        &[
            r#"{"cmd":"stats","id":"a1"}"#,
            "{not json",
            r#"{"cmd":"dance","id":2}"#,
            r#"{"cmd":"kick"}"#,
            r#"{"cmd":"list","bogus":true}"#,
            r#"["list"]"#,
            r#"{"cmd":"list","id":[1,2]}"#,
        ],
    );
    assert_eq!(replies[0]["ok"], true);
    assert_eq!(replies[0]["id"], "a1");
    let code = |i: usize| replies[i]["error"]["code"].as_str().unwrap().to_owned();
    assert_eq!(code(1), "bad_json");
    assert_eq!(code(2), "unknown_command");
    assert_eq!(replies[2]["id"], 2);
    assert_eq!(code(3), "bad_request");
    assert_eq!(code(4), "bad_request");
    assert_eq!(code(5), "bad_request");
    assert_eq!(replies[6]["id"], serde_json::json!([1, 2]));
    for reply in &replies[1..6] {
        assert_eq!(reply["ok"], false);
        assert!(!reply["error"]["message"].as_str().unwrap().is_empty());
    }
    // An over-long request is refused and the connection still works.
    let long = format!(r#"{{"cmd":"wall","text":"{}"}}"#, "x".repeat(70_000));
    let replies = raw(&d, &[&long, r#"{"cmd":"list"}"#]);
    assert_eq!(replies[0]["error"]["code"], "too_long");
    assert_eq!(replies[1]["ok"], true);
    d.wait_log("command=\"invalid\" outcome=\"bad_json\"");
}

#[test]
fn socket_permissions() {
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sub/admin.sock");
    let toml = format!(
        "{BASE_CONFIG}[admin]\nsocket = {:?}\nmode = \"0660\"\n",
        socket.display().to_string()
    );
    let d = Daemon::spawn(dir, socket.clone(), &toml);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let parent = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o750,
        "created 0750: the group may reach the socket"
    );
    d.wait_log("admin socket ready");
}

#[test]
fn second_instance_stale_socket_and_squatters() {
    let d = Daemon::start();
    let out = common::natterd_once(&d.config, &d.state_dir());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let want = format!(
        "another natterd is already running (admin socket {})",
        d.socket.display()
    );
    assert!(err.contains(&want), "{err}");

    // A socket left by a killed natterd is replaced.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    drop(UnixListener::bind(&socket).unwrap());
    let toml = format!(
        "{BASE_CONFIG}[admin]\nsocket = {:?}\n",
        socket.display().to_string()
    );
    let d2 = Daemon::spawn(dir, socket.clone(), &toml);
    assert!(d2.ctl(&["stats"]).status.success());
    d2.wait_log("removing stale admin socket");

    // Anything else at the path is left alone.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    std::fs::write(&socket, "precious").unwrap();
    std::fs::write(
        dir.path().join("n.toml"),
        format!(
            "{BASE_CONFIG}[admin]\nsocket = {:?}\n",
            socket.display().to_string()
        ),
    )
    .unwrap();
    let out = common::natterd_once(&dir.path().join("n.toml"), &dir.path().join("state"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exists and is not a socket"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
}

#[test]
fn a_killed_daemon_can_be_restarted_on_its_socket() {
    let mut d = Daemon::start();
    d.signal(Signal::KILL);
    d.wait_exit();
    assert!(d.socket.exists(), "a killed natterd leaves its socket");
    let out = d.ctl(&["list"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("nothing is listening"),
        "{}",
        text(&out.stderr)
    );
    let toml = std::fs::read_to_string(&d.config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let again = Daemon::spawn(dir, d.socket.clone(), &toml);
    assert!(again.ctl(&["list"]).status.success());
}

#[test]
fn natterctl_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.sock");
    let missing = missing.to_str().unwrap();
    let out = natterctl(&["--socket", missing, "list"]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains(missing) && err.contains("is natterd running"),
        "{err}"
    );
    // Usage errors.
    assert_eq!(natterctl(&["dance"]).status.code(), Some(2));
    assert_eq!(natterctl(&["kick"]).status.code(), Some(2));
    assert_eq!(natterctl(&["wall"]).status.code(), Some(2));
    // A socket that accepts but never answers.
    let silent = dir.path().join("silent.sock");
    let _listener = UnixListener::bind(&silent).unwrap();
    let out = natterctl(&[
        "--socket",
        silent.to_str().unwrap(),
        "--timeout",
        "0.5",
        "stats",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("no answer"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn natterctl_finds_the_socket_through_the_config() {
    let d = Daemon::start();
    let config = d.config.to_str().unwrap();
    let out = natterctl(&["--config", config, "stats"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // With no socket configured, it looks where natterd would by default.
    let runtime = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_natterctl"))
        .arg("list")
        .env("RUNTIME_DIRECTORY", runtime.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let expected = runtime.path().join("admin.sock");
    assert!(text(&out.stderr).contains(expected.to_str().unwrap()));
}

#[test]
fn reload_applies_changes_and_rejects_broken_files() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    let base = std::fs::read_to_string(&d.config).unwrap();
    let changed = base
        .replace(
            "[chat]\ntimestamps = false\n",
            "[chat]\ntimestamps = true\n",
        )
        .replace("[server]\n", "[server]\nmotd = \"fresh news\"\n")
        .replace("127.0.0.1:0", "127.0.0.1:1");
    std::fs::write(&d.config, &changed).unwrap();
    let out = d.ctl(&["reload"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "configuration reloaded\nchanged: chat.timestamps, server.motd\nneeds a restart: server.listen\n"
    );
    // New connections see the new MOTD; timestamps apply at once.
    let mut c = d.connect();
    assert_eq!(c.bytes(5), common::HELLO);
    c.line();
    c.expect("fresh news");
    alice.say("/ls");
    let line = alice.line();
    assert_eq!(common::unstamp(&line), "* 1 online in #lobby: alice");
    assert_ne!(line, "* 1 online in #lobby: alice", "timestamps are on now");

    // A broken file is refused with every error, and nothing changes.
    std::fs::write(&d.config, "[chat]\ntimestamps = \"no\"\nbogus = 1\n").unwrap();
    let out = d.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("2 error(s); the running configuration stays"),
        "{err}"
    );
    assert!(err.contains(":2: chat.timestamps: invalid type"), "{err}");
    assert!(err.contains(":3: chat.bogus: unknown field"), "{err}");
    let out = d.ctl(&["--json", "reload"]);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["error"]["code"], "invalid_config");
    assert_eq!(reply["error"]["details"].as_array().unwrap().len(), 2);
    alice.say("/ls");
    assert_ne!(
        alice.line(),
        "* 1 online in #lobby: alice",
        "timestamps still on"
    );
}

#[test]
fn sighup_reloads_like_natterctl() {
    let d = Daemon::start();
    let base = std::fs::read_to_string(&d.config).unwrap();
    let changed = base.replace("[server]\n", "[server]\nname = \"renamed\"\n");
    std::fs::write(&d.config, &changed).unwrap();
    d.signal(Signal::HUP);
    d.wait_log("configuration reloaded changed=[\"server.name\"]");
    let mut c = d.connect();
    c.bytes(5);
    assert!(c.line().starts_with("Welcome to renamed "));
    std::fs::write(&d.config, "[server\n").unwrap();
    d.signal(Signal::HUP);
    d.wait_log("reload rejected");
    let mut c = d.connect();
    c.bytes(5);
    assert!(c.line().starts_with("Welcome to renamed "));
}

#[test]
fn shutdown_through_natterctl_tells_everyone() {
    let mut d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let mut lurker = d.connect();
    lurker.expect_greeting();
    let out = d.ctl(&["shutdown", "--message", "back soon"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "natterd is shutting down\n");
    for c in [&mut alice, &mut bob, &mut lurker] {
        c.expect("* server shutting down: back soon");
        c.expect_closed();
    }
    assert_eq!(d.wait_exit(), Some(0));
    assert!(!d.socket.exists(), "socket removed");
    let log = d.log();
    assert!(log.trim_end().ends_with("shutdown complete"), "{log}");
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    for signal in [Signal::TERM, Signal::INT] {
        let mut d = Daemon::start();
        let mut alice = d.login("alice");
        d.signal(signal);
        alice.expect("* server shutting down");
        alice.expect_closed();
        assert_eq!(d.wait_exit(), Some(0));
        assert!(!d.socket.exists());
    }
}

/// natterd with a client whose socket buffers are full and whose queue still holds
/// megabytes, so its last lines can never be written.
fn daemon_with_a_stuck_client() -> (Daemon, common::Client, common::Client) {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}max_line_bytes = 65536\n[limits]\nsend_queue_bytes = 67108864\n"
    ));
    let [mut alice, stuck] = d.room(["alice", "stuck"]);
    let big = "y".repeat(60_000);
    for _ in 0..200 {
        alice.say(&big);
    }
    alice.say("/ls");
    alice.expect("* 2 online in #lobby: alice, stuck");
    (d, alice, stuck)
}

#[test]
fn a_stuck_client_cannot_hold_up_shutdown() {
    let (mut d, mut alice, _stuck) = daemon_with_a_stuck_client();
    let queued = &d.ctl(&["--json", "list"]).stdout;
    let list: Value = serde_json::from_slice(queued).unwrap();
    assert!(list["connections"][1]["queue_bytes"].as_u64().unwrap() > 1_000_000);
    d.signal(Signal::TERM);
    alice.expect("* server shutting down");
    alice.expect_closed();
    assert_eq!(d.wait_exit(), Some(0));
}

#[test]
fn a_second_signal_exits_at_once() {
    let (mut d, _alice, _stuck) = daemon_with_a_stuck_client();
    d.signal(Signal::TERM);
    d.wait_log("shutdown started");
    d.signal(Signal::INT);
    assert_eq!(d.wait_exit(), Some(1));
    d.wait_log("second signal during shutdown");
}

#[test]
fn exit_leaves_a_socket_that_is_not_its_own() {
    let mut d = Daemon::start();
    // Someone moved natterd's socket aside and put another in its place.
    let aside = d.dir().join("moved.sock");
    std::fs::rename(&d.socket, &aside).unwrap();
    let _other = UnixListener::bind(&d.socket).unwrap();
    let socket = aside.to_str().unwrap();
    assert!(
        natterctl(&["--socket", socket, "shutdown"])
            .status
            .success()
    );
    assert_eq!(d.wait_exit(), Some(0));
    assert!(d.socket.exists(), "the other socket stays");
}
