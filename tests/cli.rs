//! natterd's and natterctl's command lines.

mod common;

use std::process::{Command, Output};

use common::text;

/// Runs natterd with its default admin socket inside a temp dir of its own.
fn natterd(args: &[&str]) -> Output {
    let runtime = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_natterd"))
        .args(args)
        .env("RUNTIME_DIRECTORY", runtime.path())
        .env("STATE_DIRECTORY", runtime.path())
        .output()
        .expect("run natterd")
}

#[test]
fn check_config_accepts_the_example_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/natter.toml");
    let out = natterd(&["--check-config", "--config", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "configuration OK\n");
}

#[test]
fn check_config_lists_every_error_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"nowhere\"]\ncolour = \"red\"\n\n[chat]\nmax_nick_len = 0\ntimestamps = 3\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = natterd(&["--check-config", "--config", p]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 5, "{err}");
    assert!(
        lines[0].starts_with(&format!("{p}:2: server.listen: ")),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!("{p}:3: server.colour: unknown field")),
        "{err}"
    );
    assert_eq!(
        lines[2],
        format!("{p}:6: chat.max_nick_len: must be from 1 to 64")
    );
    assert!(
        lines[3].starts_with(&format!("{p}:7: chat.timestamps: invalid type")),
        "{err}"
    );
    assert_eq!(lines[4], "configuration invalid: 4 error(s)");
}

#[test]
fn missing_config_file_is_an_error() {
    let out = natterd(&["--config", "/nonexistent/natter.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("/nonexistent/natter.toml: cannot read: "));
}

#[test]
fn help_and_version() {
    let out = natterd(&["--version"]);
    assert_eq!(
        text(&out.stdout),
        format!("natterd {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = text(&natterd(&["--help"]).stdout);
    for flag in [
        "--config",
        "--check-config",
        "--listen",
        "--help",
        "--version",
    ] {
        assert!(help.contains(flag), "{help}");
    }
}

#[test]
fn listen_flag_overrides_the_config_and_busy_ports_are_reported() {
    let d = common::Daemon::start();
    let busy = d.addr().to_string();
    let out = natterd(&["--listen", &busy]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {busy}")), "{err}");
}
