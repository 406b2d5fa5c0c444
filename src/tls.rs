//! TLS listeners (`[tls]`): the same chat, encrypted, with rustls.
//!
//! The handshake is tokio-rustls's. After it, a relay task copies between the TLS stream and
//! one end of a socket pair, and the session runs on the other end exactly as on a TCP
//! socket: the session's transport is readiness-based (`try_read(&self)`), which a TLS
//! stream is not. The relay costs a task, two file descriptors and two 8 KiB buffers per
//! TLS connection; backpressure passes through (a client that does not read fills the pair
//! and the session's write timeout applies as on TCP).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use crate::daemon::Daemon;
use crate::limits::Permit;
use crate::session;

/// Relay buffer each way.
const RELAY_BUFFER: usize = 8 * 1024;
/// How long the relay may go on writing after the session ended.
const RELAY_LINGER: Duration = Duration::from_secs(5);
/// The longest a handshake may take when `login_timeout` is off.
const MAX_HANDSHAKE: Duration = Duration::from_secs(60);

/// The server configuration for the PEM certificate chain at `cert` and key at `key`; the
/// error names the file at fault.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "certificate {} and key {} do not go together: {e}",
                cert.display(),
                key.display()
            )
        })
}

/// Serves one accepted TLS connection: the handshake (within the login timeout), then the
/// session over the relay.
pub async fn run(stream: TcpStream, peer: SocketAddr, daemon: Arc<Daemon>, permit: Permit) {
    let Some(config) = daemon.tls_config() else {
        return;
    };
    let login = daemon.config().limits.login_timeout;
    let limit = if login == 0 {
        MAX_HANDSHAKE
    } else {
        Duration::from_secs(login).min(MAX_HANDSHAKE)
    };
    let handshake = TlsAcceptor::from(config).accept(stream);
    let tls = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            if daemon.log_gate.allow_shared() {
                warn!(error = %e, "TLS handshake failed");
            }
            return;
        }
        Err(_) => {
            if daemon.log_gate.allow_shared() {
                warn!("TLS handshake timed out");
            }
            return;
        }
    };
    let (ours, theirs) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            warn!(error = %e, "cannot make a socket pair for a TLS connection");
            return;
        }
    };
    let relay = tokio::spawn(async move {
        let mut tls = tls;
        let mut theirs = theirs;
        let _ = tokio::io::copy_bidirectional_with_sizes(
            &mut tls,
            &mut theirs,
            RELAY_BUFFER,
            RELAY_BUFFER,
        )
        .await;
    });
    session::run(ours, peer, daemon, permit).await;
    // The session closed its end; the relay ends when the rest is out or the peer is gone.
    // A peer that never reads would hold it (and its socket) forever: it gets 5 s.
    let mut relay = relay;
    if tokio::time::timeout(RELAY_LINGER, &mut relay)
        .await
        .is_err()
    {
        relay.abort();
    }
}
