//! Test certificates, made with Debian's `openssl` in a temp dir: a CA and a server
//! certificate for 127.0.0.1 signed by it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A CA and a server certificate and key, in a temp dir.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Certs {
    /// Makes them, or prints why not (no openssl) and returns None.
    pub fn make(test: &str) -> Option<Certs> {
        let dir = tempfile::tempdir().ok()?;
        let made = openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=natter test CA",
            ],
        );
        if !made {
            eprintln!("SKIPPED {test}: `openssl` is not installed (Debian package openssl)");
            return None;
        }
        let certs = Certs { dir };
        assert!(certs.renew(), "openssl made a CA but no server certificate");
        Some(certs)
    }

    /// A new server certificate and key (a new serial), over the old files.
    pub fn renew(&self) -> bool {
        let dir = self.dir.path();
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ) && openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        )
    }

    /// A file in the dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `[tls]` table serving these on a free port.
    pub fn table(&self) -> String {
        format!(
            "[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = {:?}\nkey = {:?}\n",
            self.path("server.pem").display().to_string(),
            self.path("server.key").display().to_string()
        )
    }
}
