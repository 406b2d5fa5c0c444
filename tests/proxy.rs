//! The PROXY protocol: natterd behind a TCP proxy sees the real client address, trusts only
//! the configured proxies, and refuses bad headers; and the shipped `contrib/haproxy.cfg`
//! with Debian's HAProxy in front of two nodes.

mod common;

use common::admin::{ctl, ctl_json};
use common::haproxy::{Haproxy, free_port, have};
use common::{Client, Daemon, text};
use std::net::SocketAddr;

/// natterd trusting `proxies` for PROXY headers, with `extra` appended.
fn behind(proxies: &str, extra: &str) -> Daemon {
    Daemon::with_config(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nproxy_protocol = [{proxies}]\n\
         [chat]\ntimestamps = false\n{extra}"
    ))
}

fn peer_of(d: &Daemon, nick: &str) -> String {
    let list = ctl_json(d, &["list"]);
    let conns = list["connections"].as_array().unwrap();
    let me = conns.iter().find(|c| c["nick"] == nick).expect("listed");
    me["peer"].as_str().unwrap().to_owned()
}

fn v2(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&source);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&2323u16.to_be_bytes());
    h
}

#[test]
fn a_trusted_proxy_gives_the_real_address_to_bans_limits_and_list() {
    let d = behind("\"127.0.0.1/32\"", "[limits]\nmax_clients_per_ip = 1\n");
    let mut c = d.connect();
    c.send("PROXY TCP4 203.0.113.7 127.0.0.1 40000 2323\r\n");
    let mut alice = d.login_on(c, "alice");
    assert_eq!(peer_of(&d, "alice"), "203.0.113.7:40000");
    let mut c = d.connect();
    c.send(v2([198, 51, 100, 9], 41000));
    let _bob = d.login_on(c, "bob");
    alice.expect("* bob joined");
    assert_eq!(peer_of(&d, "bob"), "198.51.100.9:41000");
    // Per-address limits count the client, not the proxy.
    let mut c = d.connect();
    c.send("PROXY TCP4 203.0.113.7 127.0.0.1 40001 2323\r\n");
    c.expect("! too many connections from your address");
    c.expect_closed();
    // Bans hold for the address behind the proxy.
    let reply = ctl_json(&d, &["ban", "203.0.113.0/24"]);
    assert_eq!(reply["kicked"][0], "alice");
    let mut c = d.connect();
    c.send("PROXY TCP4 203.0.113.8 127.0.0.1 40002 2323\r\n");
    let line = c.line();
    assert!(line.starts_with("! you are banned"), "{line}");
    d.wait_log("peer=203.0.113.8:40002");
}

#[test]
fn bad_headers_and_headers_from_strangers_are_refused() {
    let d = behind("\"127.0.0.1\"", "");
    for bad in [
        &b"PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n"[..],
        b"alice\r\n",
        b"PROXY TCP4 1.2.3.4",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff",
    ] {
        let mut c = d.connect();
        c.send(bad);
        if bad.len() < 20 {
            c.shutdown_write();
        }
        // Nothing is said to a connection whose proxy is broken: it is closed.
        c.expect_closed();
    }
    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["refused"]["bad_proxy_header"], 4);
    d.wait_log("PROXY header refused");

    // From an address not in the list, a PROXY header is not believed.
    let d = behind("\"127.0.0.2/32\"", "");
    let mut c = d.connect();
    c.expect_greeting();
    c.send("PROXY TCP4 203.0.113.7 127.0.0.1 40000 2323\r\n");
    c.expect("! PROXY header not accepted from this address");
    c.expect_closed();
    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["refused"]["untrusted_proxy"], 1);
    // And a trusted address must send one.
    let mut c = Client::connect_from([127, 0, 0, 2].into(), d.addr());
    c.send("PROXY TCP4 192.0.2.1 127.0.0.1 5 6\r\n");
    let _carol = d.login_on(c, "carol");
    assert_eq!(peer_of(&d, "carol"), "192.0.2.1:5");
}

#[test]
fn haproxy_in_front_of_two_nodes() {
    if !have("haproxy", "haproxy_in_front_of_two_nodes") {
        return;
    }
    let nodes = [
        behind("\"127.0.0.1/32\"", ""),
        behind("\"127.0.0.1/32\"", ""),
    ];
    let port = free_port();
    let _haproxy = Haproxy::start(port, [nodes[0].addr(), nodes[1].addr()]);
    let front: SocketAddr = ([127, 0, 0, 1], port).into();
    // The health checks (a LOCAL header, then the greeting) find both nodes up.
    for node in &nodes {
        node.wait_log("connection accepted");
    }
    // Clients from two addresses; natterd sees each one's own, not HAProxy's.
    let mut alice = Client::connect_from([127, 0, 0, 5].into(), front);
    alice.expect_greeting();
    alice.say("alice");
    let welcome = alice.line();
    assert!(welcome.starts_with("* welcome, alice!"), "{welcome}");
    let mut bob = Client::connect_from([127, 0, 0, 6].into(), front);
    bob.expect_greeting();
    bob.say("bob");
    bob.line();
    let on = |nick: &str| -> usize {
        let has = |d: &Daemon| text(&d.ctl(&["list"]).stdout).contains(nick);
        nodes.iter().position(has).expect("on a node")
    };
    let (a, b) = (on("alice"), on("bob"));
    assert_ne!(a, b, "leastconn spreads them over both nodes");
    assert!(peer_of(&nodes[a], "alice").starts_with("127.0.0.5:"));
    assert!(peer_of(&nodes[b], "bob").starts_with("127.0.0.6:"));
    // A node that stops is taken out: new clients reach the other.
    let [first, second] = nodes;
    let (mut gone, kept) = if a == 0 {
        (first, second)
    } else {
        (second, first)
    };
    gone.signal(common::Signal::KILL);
    gone.wait_exit();
    // (Until its checks fail, HAProxy redispatches from the dead node to the live one.)
    let mut carol = Client::connect_from([127, 0, 0, 7].into(), front);
    carol.expect_greeting();
    carol.say("carol");
    let welcome = carol.line();
    assert!(welcome.starts_with("* welcome, carol!"), "{welcome}");
    assert!(ctl(&kept, &["list"]).contains("carol"));
}
