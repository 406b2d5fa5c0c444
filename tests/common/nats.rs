//! A real `nats-server` with JetStream for the cluster tests, on a free loopback port with its
//! store in a temp dir; killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// A running nats-server.
pub struct Nats {
    child: Option<Child>,
    /// Its client port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    /// More arguments (TLS).
    extra: Vec<String>,
}

impl Nats {
    /// Starts nats-server, or says why a test cannot run: `None` (with the reason printed)
    /// when nats-server is not installed.
    pub fn start(test: &str) -> Option<Nats> {
        Nats::start_with(test, &[])
    }

    /// Like [`Nats::start`], with more `nats-server` arguments.
    pub fn start_with(test: &str, extra: &[String]) -> Option<Nats> {
        let installed = Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            eprintln!(
                "SKIPPED {test}: `nats-server` is not installed (Debian package nats-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut nats = Nats {
            child: None,
            port,
            dir: tempfile::tempdir().expect("temp dir"),
            extra: extra.to_vec(),
        };
        nats.resume();
        Some(nats)
    }

    /// `[cluster]` for a node named `node` of this server, with a short node timeout.
    pub fn cluster(&self, node: &str) -> String {
        format!(
            "[cluster]\nnats = \"nats://127.0.0.1:{}\"\nnode = \"{node}\"\nnode_timeout = \"3s\"\n",
            self.port
        )
    }

    /// Stops the server (SIGKILL), as a crash or a network cut would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store, and waits until it listens.
    pub fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
