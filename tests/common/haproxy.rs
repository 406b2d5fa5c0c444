//! HAProxy from Debian's package, run with the shipped `contrib/haproxy.cfg` in front of two
//! nodes; killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// A free loopback port (taken by nobody the moment it is returned).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// HAProxy on `port` with the shipped configuration, pointed at `nodes`; killed when dropped.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(port: u16, nodes: [SocketAddr; 2]) -> Haproxy {
        let shipped = include_str!("../../contrib/haproxy.cfg");
        let config = shipped
            .replace("0.0.0.0:2323", &format!("127.0.0.1:{port}"))
            .replace("10.0.0.11:2323", &nodes[0].to_string())
            .replace("10.0.0.12:2323", &nodes[1].to_string())
            // Tests run under a 20,000 file limit; 20,000 connections need twice that.
            .replace("maxconn 20000", "maxconn 2000");
        assert_ne!(config, shipped);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        let deadline = Instant::now() + TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        Haproxy { child, _dir: dir }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` runs here; says so when it does not, so a skip is never silent.
pub fn have(tool: &str, test: &str) -> bool {
    let found = Command::new(tool)
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED {test}: `{tool}` is not installed (Debian package {tool})");
    }
    found
}
