//! natterctl from tests: one command and its reply, or a running `watch`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use super::{Daemon, TIMEOUT, text};

/// Runs natterctl and returns its stdout, asserting it succeeded.
pub fn ctl(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "natterctl {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs natterctl with `--json` and returns the reply.
pub fn ctl_json(d: &Daemon, args: &[&str]) -> Value {
    let out = ctl(d, &[&["--json"], args].concat());
    serde_json::from_str(&out).expect("JSON reply")
}

/// natterctl's exit code and stderr for a command expected to fail.
pub fn ctl_fails(d: &Daemon, args: &[&str]) -> (i32, String) {
    let out = d.ctl(args);
    assert!(!out.status.success(), "natterctl {args:?} succeeded");
    (out.status.code().unwrap_or(-1), text(&out.stderr))
}

/// A running `natterctl watch`, its stdout read line by line on a thread.
pub struct Watch {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Watch {
    pub fn start(d: &Daemon, json: bool) -> Watch {
        let socket = d.socket.to_str().unwrap();
        let mut args = vec!["--socket", socket, "watch"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_natterctl"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut watch = Watch { child, lines };
        // Subscribed once natterd has answered.
        let first = watch.line();
        if json {
            assert_eq!(first, r#"{"ok":true,"watching":true}"#);
        } else {
            assert!(first.starts_with("watching natterd at "), "{first}");
        }
        watch
    }

    pub fn line(&mut self) -> String {
        self.lines
            .recv_timeout(TIMEOUT)
            .expect("a line from natterctl watch")
    }

    /// The next event of kind `event`, skipping others.
    pub fn event(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {event} event");
            });
            let value: Value = serde_json::from_str(&line).expect("one JSON event per line");
            assert!(value["at"].is_string(), "{line}");
            if value["event"] == event {
                return value;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
