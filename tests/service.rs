//! Running as a service: log files, sd_notify, socket activation and the systemd units.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BASE_CONFIG, Client, Daemon, Signal, TIMEOUT, text};

/// natterd logging into a fresh directory with `log` as the rest of its `[log]` table.
fn with_log_dir(log: &str) -> (Daemon, PathBuf) {
    let logs = tempfile::tempdir().unwrap().keep();
    let toml = format!(
        "{BASE_CONFIG}[log]\ndirectory = {:?}\n{log}",
        logs.display().to_string()
    );
    (Daemon::with_config(&toml), logs)
}

/// Today's log file in `dir` (daily rotation, prefix natterd).
fn today(dir: &Path) -> PathBuf {
    dir.join(format!(
        "natterd.{}.log",
        chrono::Utc::now().format("%Y-%m-%d")
    ))
}

/// Waits until the file at `path` contains `needle`; returns its text.
fn wait_for(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never said {needle:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_file_holds_the_events_but_no_chat_text_unless_asked() {
    let (mut d, dir) = with_log_dir("");
    let file = today(&dir);
    let [mut alice, mut bob, _carol] = d.room(["alice", "bob", "carol"]);
    alice.say("top secret words");
    bob.expect("<alice> top secret words");
    alice.say("@bob whispered words");
    bob.expect("[alice -> bob] whispered words");
    let mut refused = d.connect();
    refused.expect_greeting();
    refused.say("@bad");
    refused.line();
    assert!(
        d.ctl(&["kick", "carol", "--reason", "rude"])
            .status
            .success()
    );
    alice.say("/quit");
    let log = wait_for(&file, "reason=\"quit\"");
    for needle in [
        "connection accepted",
        "login nick=\"alice\"",
        "nickname refused reason=nickname may not start with @ or /",
        "kicked nick=\"carol\" reason=\"rude\"",
        "admin command command=\"kick\" outcome=\"ok\"",
        "admin{uid=",
        "left nick=\"alice\" reason=\"quit\" duration=",
        "conn{peer=127.0.0.1:",
    ] {
        assert!(log.contains(needle), "{needle:?} not in\n{log}");
    }
    let first = log.lines().next().unwrap();
    assert!(
        first.starts_with(&chrono::Utc::now().format("%Y-%m-%dT").to_string()),
        "{first}"
    );
    assert!(
        first.contains("Z  INFO ") || first.contains("Z  WARN "),
        "{first}"
    );
    assert!(
        !log.contains("secret") && !log.contains("whispered"),
        "{log}"
    );

    // Turn chat logging on with a reload: text appears, under its own target.
    let config = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, config.replace("[log]\n", "[log]\nchat = true\n")).unwrap();
    assert!(d.ctl(&["reload"]).status.success());
    bob.say("now logged");
    let log = wait_for(&file, "now logged");
    assert!(
        log.contains("natter::chat: group message from=\"bob\" text=\"now logged\""),
        "{log}"
    );
    bob.say("@carol gone");
    bob.say("@bob to myself");
    let log = wait_for(&file, "to myself");
    assert!(
        log.contains("private message from=\"bob\" to=\"bob\""),
        "{log}"
    );

    d.signal(Signal::TERM);
    assert_eq!(d.wait_exit(), Some(0));
    let log = std::fs::read_to_string(&file).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.ends_with("shutdown complete"), "{last}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn log_level_changes_on_reload_and_sigusr1_reopens() {
    let (d, dir) = with_log_dir("rotation = \"never\"\n");
    let file = dir.join("natterd.log");
    let mut a = d.login("early");
    wait_for(&file, "login nick=\"early\"");
    let config = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        config.replace("[log]\n", "[log]\nlevel = \"warn\"\n"),
    )
    .unwrap();
    let out = d.ctl(&["reload"]);
    assert!(
        text(&out.stdout).contains("changed: log.level"),
        "{}",
        text(&out.stdout)
    );
    wait_for(&file, "log level changing level=\"warn\"");
    // logrotate moves the file, then signals.
    let moved = dir.join("natterd.log.1");
    std::fs::rename(&file, &moved).unwrap();
    d.signal(Signal::USR1);
    let _late = d.login("late");
    // A warning lands in the new file; the info-level login of "late" does not.
    a.expect("* late joined");
    assert!(d.ctl(&["kick", "early"]).status.success());
    a.expect("! you were kicked");
    let log = wait_for(&file, "reason=\"kicked\"");
    assert!(!log.contains("late"), "{log}");
    assert!(std::fs::read_to_string(&moved).unwrap().contains("early"));
    assert!(d.ctl(&["reopen-logs"]).status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn old_log_files_are_pruned_and_others_left_alone() {
    let logs = tempfile::tempdir().unwrap();
    let mine = [
        "natterd.2020-01-01.log",
        "natterd.2020-01-02.log",
        "natterd.2020-01-03.log",
    ];
    let others = [
        "natterd.2020-01-01.log.gz",
        "natterd-notes.log",
        "other.2020-01-01.log",
    ];
    for name in mine.iter().chain(&others) {
        std::fs::write(logs.path().join(name), "old\n").unwrap();
    }
    let toml = format!(
        "{BASE_CONFIG}[log]\ndirectory = {:?}\nmax_files = 2\n",
        logs.path().display().to_string()
    );
    let d = Daemon::with_config(&toml);
    wait_for(&today(logs.path()), "listening");
    let mut left: Vec<String> = std::fs::read_dir(logs.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut want: Vec<String> = others.iter().map(|s| s.to_string()).collect();
    want.push("natterd.2020-01-03.log".into());
    want.push(
        today(logs.path())
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .into(),
    );
    want.sort();
    assert_eq!(left, want);
    drop(d);
}

#[test]
fn a_missing_log_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let config = dir.path().join("n.toml");
    std::fs::write(
        &config,
        format!("[log]\ndirectory = {:?}\n", missing.display().to_string()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(&config)
        .env("STATE_DIRECTORY", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "log directory {} does not exist",
            missing.display()
        )),
        "{err}"
    );
}

/// natterd with `NOTIFY_SOCKET` (and `extra` variables) pointing at a datagram socket of
/// ours; returns it and a reader of its messages.
fn notified(extra: &[(&str, &str)]) -> (Daemon, impl FnMut() -> String) {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener.set_read_timeout(Some(TIMEOUT)).unwrap();
    let socket = dir.path().join("admin.sock");
    let toml = format!(
        "{BASE_CONFIG}[admin]\nsocket = {:?}\n",
        socket.display().to_string()
    );
    let notify_path = notify.to_str().unwrap().to_owned();
    let mut env = vec![("NOTIFY_SOCKET", notify_path.as_str())];
    env.extend_from_slice(extra);
    let d = Daemon::spawn_with(dir, socket, &toml, &env);
    let next = move || {
        let mut buf = [0; 512];
        let n = listener.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    (d, next)
}

#[test]
fn sd_notify_ready_reloading_stopping() {
    let (mut d, mut next) = notified(&[]);
    assert_eq!(next(), "READY=1\n");
    d.signal(Signal::HUP);
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next(), "READY=1\n");
    d.signal(Signal::TERM);
    assert_eq!(next(), "STOPPING=1\n");
    assert_eq!(d.wait_exit(), Some(0));
}

#[test]
fn watchdog_is_petted_when_asked() {
    let (_d, mut next) = notified(&[("WATCHDOG_USEC", "400000")]);
    let seen: Vec<String> = (0..4).map(|_| next()).collect();
    assert!(
        seen.iter().filter(|m| *m == "WATCHDOG=1\n").count() >= 2,
        "{seen:?}"
    );
}

/// The path of a system tool, or None with a printed reason to skip.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipped: {name} is not installed (the systemd package provides it)");
    }
    found
}

#[test]
fn socket_activation_serves_chat_on_the_passed_socket() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let config = dir.path().join("n.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:1\"]\n[chat]\ntimestamps = false\n[admin]\nsocket = {:?}\n",
            socket.display().to_string()
        ),
    )
    .unwrap();
    // A free port: bind one, let it go, have systemd-socket-activate take it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = std::fs::File::create(dir.path().join("err")).unwrap();
    let mut child = Command::new(activate)
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg(format!(
            "--setenv=STATE_DIRECTORY={}",
            dir.path().join("state").display()
        ))
        .arg(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    wait_for(&dir.path().join("err"), "Listening on");
    let mut c = Client::connect(([127, 0, 0, 1], port).into());
    c.expect_greeting();
    c.say("zed");
    c.expect("* welcome, zed! 1 user online; /h shows help");
    c.expect("* you are in #lobby (1 here)");
    let log = wait_for(&dir.path().join("err"), "using sockets passed by systemd");
    assert!(
        log.contains(&format!("listening addr=127.0.0.1:{port}")),
        "{log}"
    );
    let out = common::natterctl(&["--socket", socket.to_str().unwrap(), "shutdown"]);
    assert!(out.status.success());
    c.expect("* server shutting down");
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "natterd did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The units with their binaries pointed at this build, in a temp dir.
fn units_for_this_build() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_natterd")).parent().unwrap();
    for unit in [
        "natterd.service",
        "natterd-activated.service",
        "natterd.socket",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("systemd")
                .join(unit),
        )
        .unwrap();
        let text = text.replace("/usr/local/bin/", &format!("{}/", bin.display()));
        std::fs::write(dir.path().join(unit), text).unwrap();
    }
    dir
}

#[test]
fn units_verify() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = units_for_this_build();
    let out = Command::new(analyze)
        .current_dir(dir.path())
        .args([
            "verify",
            "natterd.service",
            "natterd-activated.service",
            "natterd.socket",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn units_score_1_5_or_better() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let dir = units_for_this_build();
    for (unit, at_most) in [
        ("natterd.service", "1.1"),
        ("natterd-activated.service", "0.2"),
    ] {
        let out = Command::new(&analyze)
            .current_dir(dir.path())
            .args(["security", "--offline=true", "--threshold=15", unit])
            .output()
            .unwrap();
        let report = text(&out.stdout);
        assert!(out.status.success(), "{unit} scores over 1.5:\n{report}");
        let want = format!("Overall exposure level for {unit}: {at_most} ");
        assert!(
            report.contains(&want),
            "README's figure is stale:\n{report}"
        );
    }
}
