//! TLS listeners: `openssl s_client` users chat with plain TCP users, garbage on the TLS port
//! is refused and logged, bad certificates are reported, and a reload serves a renewed one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;

use common::certs::Certs;
use common::{BASE_CONFIG, Client, Daemon, TIMEOUT, barrier};

/// `openssl s_client -quiet` to `port`, checking the server against the test CA.
struct SClient {
    child: Child,
    input: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl SClient {
    fn connect(port: u16, certs: &Certs) -> SClient {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(certs.path("ca.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl runs");
        let input = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Bytes, not UTF-8 lines: the greeting starts with telnet negotiation.
            for line in BufReader::new(out).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line);
                let _ = tx.send(line.trim_end_matches('\r').to_owned());
            }
        });
        SClient {
            child,
            input,
            lines,
        }
    }

    fn say(&mut self, text: &str) {
        writeln!(self.input, "{text}").unwrap();
    }

    /// Reads lines until one equals `want`.
    fn until(&mut self, want: &str) {
        loop {
            let line = self
                .lines
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("never saw {want:?}"));
            if line == want || line.ends_with(want) {
                return;
            }
        }
    }
}

impl Drop for SClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_and_plain_users_chat_both_ways() {
    let Some(certs) = Certs::make("tls_and_plain_users_chat_both_ways") else {
        return;
    };
    let d = Daemon::with_config(&format!("{BASE_CONFIG}{}", certs.table()));
    let tls_port = d.addrs[1].port();
    let mut alice = SClient::connect(tls_port, &certs);
    alice.until("Choose a nickname (up to 16 characters):");
    alice.say("alice");
    alice.until("* welcome, alice! 1 user online; /h shows help");
    let mut bob = d.login("bob");
    alice.until("* bob joined");
    alice.say("hello over tls");
    bob.expect("<alice> hello over tls");
    bob.say("hello in the clear");
    alice.until("<bob> hello in the clear");
    // Plaintext on the TLS port: closed and logged; nobody else notices.
    let mut plain = std::net::TcpStream::connect(d.addrs[1]).unwrap();
    plain.set_read_timeout(Some(TIMEOUT)).unwrap();
    plain.write_all(b"carol\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    // At most a TLS alert, never the chat.
    assert!(answer.len() < 16, "{answer:?}");
    d.wait_log("TLS handshake failed");
    let mut carol = d.login("carol");
    bob.expect("* carol joined");
    barrier(&mut carol, "carol", &mut bob, "bob");

    // A renewed certificate is served after a reload; the session that began before goes on.
    let serial = |port: u16| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -serial"
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let before = serial(tls_port);
    assert!(before.starts_with("serial="), "{before}");
    assert!(certs.renew());
    let out = d.ctl(&["reload"]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    assert_ne!(serial(tls_port), before);
    alice.say("still here");
    bob.until_line("<alice> still here");
}

trait UntilLine {
    fn until_line(&mut self, want: &str);
}

impl UntilLine for Client {
    fn until_line(&mut self, want: &str) {
        for _ in 0..20 {
            if self.line() == want {
                return;
            }
        }
        panic!("never saw {want:?}");
    }
}

#[test]
fn bad_certificates_are_named() {
    let Some(certs) = Certs::make("bad_certificates_are_named") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let check = |tls: &str| {
        let config = dir.path().join("natter.toml");
        std::fs::write(&config, format!("{BASE_CONFIG}{tls}")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_natterd"))
            .arg("--check-config")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        common::text(&out.stderr)
    };
    let cert = certs.path("server.pem").display().to_string();
    let missing = check(&format!(
        "[tls]\ncert = {cert:?}\nkey = \"/nonexistent/key.pem\"\n"
    ));
    assert!(missing.contains("/nonexistent/key.pem"), "{missing}");
    let ca_key = certs.path("ca.key").display().to_string();
    let mismatched = check(&format!("[tls]\ncert = {cert:?}\nkey = {ca_key:?}\n"));
    assert!(mismatched.contains("do not go together"), "{mismatched}");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let bad = check(&format!(
        "[tls]\ncert = {:?}\nkey = {ca_key:?}\n",
        garbage.display().to_string()
    ));
    assert!(bad.contains("garbage.pem"), "{bad}");
    let half = check("[tls]\nlisten = [\"127.0.0.1:0\"]\n");
    assert!(half.contains("needs both cert and key"), "{half}");
}
