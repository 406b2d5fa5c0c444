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

/// A TLS client in Rust (rustls over a blocking socket) that logs in as `nick`.
fn rust_client(
    port: u16,
    certs: &Certs,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(certs.path("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Reads from `stream` until the text so far contains `want`.
fn read_until(stream: &mut impl std::io::Read, want: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains(want) {
        let n = stream.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "closed before {want:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn rust_and_ncat_tls_clients() {
    let Some(certs) = Certs::make("rust_and_ncat_tls_clients") else {
        return;
    };
    let d = Daemon::with_config(&format!("{BASE_CONFIG}{}", certs.table()));
    let port = d.addrs[1].port();
    let mut dave = rust_client(port, &certs);
    read_until(&mut dave, "Choose a nickname");
    dave.write_all(b"dave\r\n").unwrap();
    read_until(&mut dave, "* welcome, dave!");
    let mut bob = d.login("bob");
    read_until(&mut dave, "* bob joined");
    dave.write_all(b"from rust\r\n").unwrap();
    bob.expect("<dave> from rust");
    bob.say("to rust");
    read_until(&mut dave, "<bob> to rust");
    let installed = Command::new("ncat")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "SKIPPED the ncat half of rust_and_ncat_tls_clients: `ncat` is not installed (Debian package ncat)"
        );
        return;
    }
    // Bounded by coreutils' timeout: a pipe from a child has no read timeout of its own.
    let mut ncat = Command::new("timeout")
        .args(["20", "ncat", "--ssl", "--ssl-verify", "--ssl-trustfile"])
        .arg(certs.path("ca.pem"))
        .args(["127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = ncat.stdin.take().unwrap();
    let mut output = ncat.stdout.take().unwrap();
    read_until(&mut output, "Choose a nickname");
    input.write_all(b"erin\r\n").unwrap();
    read_until(&mut output, "* welcome, erin!");
    bob.expect("* erin joined");
    input.write_all(b"from ncat\r\n").unwrap();
    bob.expect("<erin> from ncat");
    let _ = ncat.kill();
    let _ = ncat.wait();
}
