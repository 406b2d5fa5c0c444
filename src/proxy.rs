//! The PROXY protocol (v1 text and v2 binary), as HAProxy sends it in front of natterd: the
//! real client address, before any chat byte.
//!
//! The header's grammar is the `ppp` crate's; this module only reads exactly the header's
//! bytes off the socket (so what follows stays the client's) within a time and size bound,
//! and turns the result into the address natterd uses for bans, limits, `list` and logs.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::{HeaderResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A proxy gets this long to send the whole header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest v1 header, CR LF included (the specification's bound).
const V1_MAX: usize = 107;
/// The longest v2 header natterd reads: 16 fixed bytes and addresses with room for a few
/// TLVs (HAProxy sends none by default). The specification allows 64 KiB; nobody needs it.
const V2_MAX: usize = 16 + 512;
/// What every v2 header starts with.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Why a header was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BadHeader {
    /// Not a PROXY header at all, or one `ppp` cannot parse.
    Malformed(String),
    /// Longer than natterd reads.
    TooLong,
    /// Not all there within [`HEADER_TIMEOUT`], or the connection closed first.
    Incomplete,
}

impl std::fmt::Display for BadHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadHeader::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            BadHeader::TooLong => f.write_str("PROXY header too long"),
            BadHeader::Incomplete => f.write_str("no complete PROXY header in time"),
        }
    }
}

/// The addresses `[server] proxy_protocol` trusts to send a header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trusted(Vec<IpNet>);

impl Trusted {
    /// Reads `127.0.0.1/32`, `10.0.0.0/8` or a bare address; says which entry is bad.
    pub fn parse(entries: &[String]) -> Result<Trusted, String> {
        let net = |text: &str| -> Option<IpNet> {
            text.parse::<IpNet>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
        };
        entries
            .iter()
            .map(|e| net(e.trim()).ok_or_else(|| e.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Trusted)
    }

    /// Whether a connection from `ip` must start with a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Whether `bytes`, the first a client sent, begin a PROXY header (`PROXY ` or the v2
/// signature): what an untrusted address must not send.
pub fn looks_like_header(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PROXY ") || bytes.starts_with(V2_SIGNATURE)
}

/// Reads one header from `io`, exactly its bytes, and returns the client's address: the
/// header's source, or `peer` (the proxy itself) for a v2 LOCAL command (health checks) or
/// a v1 `UNKNOWN`. Not bounded in time: the caller wraps it in [`HEADER_TIMEOUT`].
pub async fn read_header<R: AsyncRead + Unpin>(
    io: &mut R,
    peer: SocketAddr,
) -> Result<SocketAddr, BadHeader> {
    let mut buf = Vec::with_capacity(V1_MAX);
    let mut byte = [0u8; 1];
    let incomplete = |_| BadHeader::Incomplete;
    io.read_exact(&mut byte).await.map_err(incomplete)?;
    buf.push(byte[0]);
    if byte[0] == V2_SIGNATURE[0] {
        // v2: 16 fixed bytes, the last two the length of the rest.
        let mut fixed = [0u8; 15];
        io.read_exact(&mut fixed).await.map_err(incomplete)?;
        buf.extend_from_slice(&fixed);
        let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if 16 + len > V2_MAX {
            return Err(BadHeader::TooLong);
        }
        buf.resize(16 + len, 0);
        io.read_exact(&mut buf[16..]).await.map_err(incomplete)?;
    } else {
        // v1: one line; read byte by byte so nothing after it is taken.
        while !buf.ends_with(b"\r\n") {
            if buf.len() >= V1_MAX {
                return Err(BadHeader::TooLong);
            }
            io.read_exact(&mut byte).await.map_err(incomplete)?;
            buf.push(byte[0]);
        }
    }
    client_address(&buf, peer)
}

/// The client address a complete header gives (see [`read_header`]).
pub fn client_address(header: &[u8], peer: SocketAddr) -> Result<SocketAddr, BadHeader> {
    let malformed = |e: &dyn std::fmt::Display| BadHeader::Malformed(e.to_string());
    match HeaderResult::parse(header) {
        HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
            v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
            v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
            v1::Addresses::Unknown => peer,
        }),
        HeaderResult::V2(Ok(h)) => match (h.command, h.addresses) {
            (v2::Command::Local, _) => Ok(peer),
            (_, v2::Addresses::IPv4(a)) => Ok(SocketAddr::from((a.source_address, a.source_port))),
            (_, v2::Addresses::IPv6(a)) => Ok(SocketAddr::from((a.source_address, a.source_port))),
            (_, other) => Err(BadHeader::Malformed(format!(
                "unsupported address family {other:?}"
            ))),
        },
        HeaderResult::V1(Err(e)) => Err(malformed(&e)),
        HeaderResult::V2(Err(e)) => Err(malformed(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 9);

    async fn read(bytes: &[u8]) -> (Result<SocketAddr, BadHeader>, Vec<u8>) {
        let mut io = bytes;
        let result = read_header(&mut io, PEER.into()).await;
        (result, io.to_vec())
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[tokio::test]
    async fn v1_and_v2_give_the_client_and_leave_the_rest() {
        let (addr, rest) = read(b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 2323\r\nalice\r\n").await;
        assert_eq!(addr, Ok("203.0.113.7:40000".parse().unwrap()));
        assert_eq!(rest, b"alice\r\n");
        let (addr, _) = read(b"PROXY TCP6 2001:db8::1 ::1 5 6\r\n").await;
        assert_eq!(addr, Ok("[2001:db8::1]:5".parse().unwrap()));
        let (addr, _) = read(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(addr, Ok(PEER.into()));
        let body = [198, 51, 100, 9, 127, 0, 0, 1, 0x9c, 0x40, 0x09, 0x13];
        let mut bytes = v2(1, 0x11, &body);
        bytes.extend_from_slice(b"bob\r\n");
        let (addr, rest) = read(&bytes).await;
        assert_eq!(addr, Ok("198.51.100.9:40000".parse().unwrap()));
        assert_eq!(rest, b"bob\r\n");
        // LOCAL: a health check from the proxy itself.
        let (addr, _) = read(&v2(0, 0, &[])).await;
        assert_eq!(addr, Ok(PEER.into()));
    }

    #[tokio::test]
    async fn hostile_headers_are_refused() {
        let too_long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        assert_eq!(read(too_long.as_bytes()).await.0, Err(BadHeader::TooLong));
        assert_eq!(
            read(b"PROXY TCP4 1.2.3.4").await.0,
            Err(BadHeader::Incomplete)
        );
        assert_eq!(read(b"").await.0, Err(BadHeader::Incomplete));
        for bad in [
            &b"PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n"[..],
            b"PROXY TCP4 1.1.1.1 1.1.1.1 99999 2\r\n",
            b"PROXY TCP9 1.1.1.1 1.1.1.1 1 2\r\n",
            b"GET / HTTP/1.1\r\n",
            b"alice\r\n",
            b"PROXY \x1b[2J\r\n",
        ] {
            assert!(
                matches!(read(bad).await.0, Err(BadHeader::Malformed(_))),
                "{bad:?}"
            );
        }
        // v2: a claimed length past the bound, a short body, a bad version, Unix sockets.
        let mut huge = v2(1, 0x11, &[]);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(read(&huge).await.0, Err(BadHeader::TooLong));
        let mut short = v2(1, 0x11, &[1, 2, 3]);
        short.truncate(18);
        assert_eq!(read(&short).await.0, Err(BadHeader::Incomplete));
        let mut version = v2(1, 0x11, &[0; 12]);
        version[12] = 0x31;
        assert!(matches!(
            read(&version).await.0,
            Err(BadHeader::Malformed(_))
        ));
        assert!(matches!(
            read(&v2(1, 0x31, &[0; 216])).await.0,
            Err(BadHeader::Malformed(_))
        ));
    }

    #[test]
    fn trusted_addresses() {
        let t = Trusted::parse(&["127.0.0.1".into(), "10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(t.trusts("127.0.0.1".parse().unwrap()));
        assert!(t.trusts("::ffff:10.1.2.3".parse().unwrap()));
        assert!(t.trusts("::1".parse().unwrap()));
        assert!(!t.trusts("127.0.0.2".parse().unwrap()));
        assert_eq!(Trusted::parse(&["nope".into()]), Err("nope".into()));
        assert!(looks_like_header(b"PROXY TCP4"));
        assert!(looks_like_header(V2_SIGNATURE));
        assert!(!looks_like_header(b"alice"));
    }
}
