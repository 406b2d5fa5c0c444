//! Several natterd nodes sharing the rooms through a real `nats-server -js`: chat across
//! nodes, nickname races between nodes, and the faults (a node killed, a node stopped,
//! NATS stopped). Each test skips, saying why, where nats-server is not installed.

mod common;

use std::time::{Duration, Instant};

use common::admin::ctl_json;
use common::nats::Nats;
use common::{BASE_CONFIG, Client, Daemon, Signal, TIMEOUT, barrier};

/// A node of the cluster on `nats`, named `node`.
fn node(nats: &Nats, node: &str) -> Daemon {
    Daemon::with_config(&format!("{BASE_CONFIG}{}", nats.cluster(node)))
}

/// Two nodes, each having heard the other (a user on one is seen on the other).
fn two_nodes(nats: &Nats) -> (Daemon, Daemon) {
    let a = node(nats, "a");
    let b = node(nats, "b");
    a.wait_log("cluster: node joined node=b");
    b.wait_log("cluster: node joined node=a");
    (a, b)
}

/// Reads lines until one equals `want`, within the harness bound.
fn until(c: &mut Client, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if c.line() == want {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {want:?}");
    }
}

#[test]
fn users_on_two_nodes_share_the_rooms() {
    let Some(nats) = Nats::start("users_on_two_nodes_share_the_rooms") else {
        return;
    };
    let (a, b) = two_nodes(&nats);
    let mut alice = a.login("alice");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    // Group messages, /me, private messages, /ls and /rooms, across nodes.
    alice.say("hello from a");
    bob.expect("<alice> hello from a");
    bob.say("/me waves");
    alice.expect("** bob waves");
    bob.say("@alice psst");
    alice.expect("[bob -> alice] psst");
    bob.expect("[bob -> alice] psst");
    alice.say("/ls");
    alice.expect("* 2 online in #lobby: alice, bob");
    // Every sender's lines arrive in order, each once.
    for i in 0..200 {
        alice.say(&format!("n{i}"));
    }
    for i in 0..200 {
        bob.expect(&format!("<alice> n{i}"));
    }
    barrier(&mut alice, "alice", &mut bob, "bob");
    // Rooms, topics and nickname changes.
    alice.say("/join #rust");
    alice.expect("* you are in #rust (1 here)");
    bob.expect("* alice left for #rust");
    bob.say("/j rust");
    bob.expect("* you are in #rust (2 here)");
    alice.expect("* bob joined");
    alice.say("/topic crabs");
    alice.expect("* alice set the topic: crabs");
    bob.expect("* alice set the topic: crabs");
    bob.say("/nick robert");
    bob.expect("* bob is now known as robert");
    alice.expect("* bob is now known as robert");
    alice.say("@robert hi");
    robert_sees(&mut bob, "[alice -> robert] hi");
    alice.expect("[alice -> robert] hi");
    // The operators see the whole cluster.
    let list = ctl_json(&a, &["list"]);
    let conns = list["connections"].as_array().unwrap();
    let robert = conns
        .iter()
        .find(|c| c["nick"] == "robert")
        .expect("listed");
    assert_eq!(robert["node"], "b");
    assert_eq!(robert["room"], "#rust");
    let rooms = ctl_json(&b, &["rooms"]);
    assert_eq!(rooms["rooms"][0]["name"], "#rust");
    assert_eq!(rooms["rooms"][0]["users"], 2);
    assert_eq!(ctl_json(&b, &["stats"])["users_online"], 2);
    // wall and topic from either node reach users on both.
    let reply = ctl_json(&b, &["wall", "--room", "rust", "maintenance"]);
    assert_eq!(reply["recipients"], 2);
    alice.expect("* [server] maintenance");
    bob.expect("* [server] maintenance");
    ctl_json(&a, &["topic", "rust", "set", "on", "a"]);
    alice.expect("* the operators set the topic: set on a");
    bob.expect("* the operators set the topic: set on a");
}

fn robert_sees(bob: &mut Client, line: &str) {
    bob.expect(line);
}

/// Asks `/ls` until it answers `want` (a user's login reaches other nodes a moment later).
fn both_listed(c: &mut Client, want: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        c.say("/ls");
        let mut line = c.line();
        while !line.contains(" online in ") {
            line = c.line();
        }
        if line == want {
            return;
        }
        assert!(Instant::now() < deadline, "{line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_that_starts_later_gets_the_topics_and_history() {
    let Some(nats) = Nats::start("a_node_that_starts_later_gets_the_topics_and_history") else {
        return;
    };
    let config = |name: &str| format!("{BASE_CONFIG}history = 5\n{}", nats.cluster(name));
    let a = Daemon::with_config(&config("a"));
    let mut alice = a.login("alice");
    alice.say("first");
    alice.say("/join #rust");
    alice.expect("* you are in #rust (1 here)");
    alice.say("/topic crabs");
    alice.expect("* alice set the topic: crabs");
    alice.say("in rust");
    alice.say("/ls");
    alice.expect("* 1 online in #rust: alice");
    let b = Daemon::with_config(&config("b"));
    b.wait_log("cluster: topics and history taken from a running node");
    let mut bob = b.login("bob");
    bob.expect("<alice> first");
    // alice's whereabouts come in a's roster, a moment after b started.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        bob.say("/rooms");
        let mut lines = vec![bob.line()];
        let count: usize = lines[0]
            .trim_start_matches("* ")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for _ in 0..count {
            lines.push(bob.line());
        }
        if lines.iter().any(|l| l == "* #rust (1): crabs") {
            break;
        }
        assert!(Instant::now() < deadline, "{lines:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    bob.say("/join #rust");
    bob.expect("* you are in #rust (2 here)");
    bob.expect("* topic: crabs");
    bob.expect("<alice> in rust");
}

#[test]
fn two_nodes_giving_one_name_at_once_give_it_once() {
    let Some(nats) = Nats::start("two_nodes_giving_one_name_at_once_give_it_once") else {
        return;
    };
    let (a, b) = two_nodes(&nats);
    for round in 0..10 {
        let name = format!("prize{round}");
        let mut on_a = a.connect();
        let mut on_b = b.connect();
        on_a.expect_greeting();
        on_b.expect_greeting();
        // Both ask at once; the create-only write in NATS decides.
        on_a.say(&name);
        on_b.say(&name);
        let (first, second) = (on_a.line(), on_b.line());
        let welcome = |l: &str| l.starts_with(&format!("* welcome, {name}!"));
        let taken = format!("! nickname already taken: {name}");
        assert!(
            welcome(&first) && second == taken || welcome(&second) && first == taken,
            "round {round}: {first:?} / {second:?}"
        );
    }
    // And for /nick: two users on two nodes, one new name, at once.
    let mut x = a.login("x1");
    let mut y = b.login("y1");
    x.send("/nick both\r\n");
    y.send("/nick both\r\n");
    let results = [first_answer(&mut x, "x1"), first_answer(&mut y, "y1")];
    let won = results.iter().filter(|r| r.is_some_and(|w| w)).count();
    let lost = results.iter().filter(|r| r.is_some_and(|w| !w)).count();
    assert_eq!((won, lost), (1, 1), "{results:?}");
}

/// Whether `c`, once `old`, got the name `both`: its own change (true), its refusal
/// (false); other lines (joins, the other's change) are skipped.
fn first_answer(c: &mut Client, old: &str) -> Option<bool> {
    for _ in 0..10 {
        let line = c.line();
        if line == format!("* {old} is now known as both") {
            return Some(true);
        }
        if line == "! nickname already taken: both" {
            return Some(false);
        }
    }
    None
}

#[test]
fn bans_mutes_and_kicks_reach_every_node_and_last() {
    let Some(nats) = Nats::start("bans_mutes_and_kicks_reach_every_node_and_last") else {
        return;
    };
    let (a, mut b) = two_nodes(&nats);
    let mut watch = common::admin::Watch::start(&b, true);
    let mut alice = a.login("alice");
    let mut mallory = b.login("mallory");
    alice.expect("* mallory joined");
    both_listed(&mut mallory, "* 2 online in #lobby: alice, mallory");
    // A ban made on a holds on b within a second, and b's watchers see it.
    let banned = Instant::now();
    let reply = ctl_json(&a, &["ban", "mallory", "--reason", "spam"]);
    assert_eq!(reply["target"], "mallory");
    mallory.expect("! you are banned: spam");
    mallory.expect_closed();
    assert!(
        banned.elapsed() < Duration::from_secs(1),
        "{:?}",
        banned.elapsed()
    );
    until(&mut alice, "* mallory was banned (spam)");
    let event = watch.event("ban");
    assert_eq!(event["target"], "mallory");
    // It survives a restart of the node that did not make it.
    drop(watch);
    b.restart();
    b.wait_log("cluster: connected to NATS");
    let mut again = b.connect();
    again.expect_greeting();
    again.say("mallory");
    let line = again.line();
    assert!(line.starts_with("! you are banned: spam"), "{line}");
    let bans = ctl_json(&b, &["bans"]);
    assert_eq!(bans["bans"][0]["target"], "mallory");
    // A mute from b reaches alice on a; a kick from b removes her.
    let mut bob = b.login("bob");
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    ctl_json(&b, &["mute", "alice"]);
    until(&mut alice, "! you are muted");
    alice.say("hello?");
    alice.expect("! you are muted");
    ctl_json(&b, &["unmute", "alice"]);
    until(&mut alice, "* you are no longer muted");
    let reply = ctl_json(&b, &["kick", "alice", "--reason", "bye"]);
    assert_eq!(reply["nick"], "alice");
    until(&mut alice, "! you were kicked: bye");
    until(&mut bob, "* alice was kicked (bye)");
    // natterctl list shows which node each user is on.
    let table = common::text(&b.ctl(&["list"]).stdout);
    assert!(table.lines().next().unwrap().ends_with("NODE"), "{table}");
}

#[test]
fn a_killed_node_s_users_leave_and_free_their_names() {
    let Some(nats) = Nats::start("a_killed_node_s_users_leave_and_free_their_names") else {
        return;
    };
    let (mut a, b) = two_nodes(&nats);
    let mut alice = a.login("alice");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    let killed = Instant::now();
    a.signal(Signal::KILL);
    a.wait_exit();
    until(&mut bob, "* alice left");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(2),
        "{took:?}"
    );
    // Her name is free once her node's entry lapsed (the same timeout).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = b.connect();
        c.expect_greeting();
        c.say("alice");
        let line = c.line();
        if line.starts_with("* welcome, alice!") {
            break;
        }
        assert_eq!(line, "! nickname already taken: alice");
        assert!(Instant::now() < deadline, "alice never freed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_stopped_node_s_users_leave_at_once() {
    let Some(nats) = Nats::start("a_stopped_node_s_users_leave_at_once") else {
        return;
    };
    let (mut a, b) = two_nodes(&nats);
    let mut alice = a.login("alice");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    let stopped = Instant::now();
    a.signal(Signal::TERM);
    until(&mut alice, "* server shutting down");
    until(&mut bob, "* alice left");
    assert!(stopped.elapsed() < Duration::from_secs(2));
    assert_eq!(a.wait_exit(), Some(0));
    // Her name is free at once.
    let _again = b.login("alice");
}

#[test]
fn without_nats_a_node_serves_its_own_users_and_comes_back() {
    let Some(mut nats) = Nats::start("without_nats_a_node_serves_its_own_users_and_comes_back")
    else {
        return;
    };
    let (a, b) = two_nodes(&nats);
    let mut alice = a.login("alice");
    let mut carol = a.login("carol");
    alice.expect("* carol joined");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    carol.expect("* bob joined");
    both_listed(&mut bob, "* 3 online in #lobby: alice, bob, carol");
    nats.stop();
    a.wait_log("cluster: NATS lost");
    // Those already here go on talking.
    alice.say("still here");
    carol.expect("<alice> still here");
    // Nobody new gets a name: it could be given twice.
    let mut dave = a.connect();
    dave.expect_greeting();
    dave.say("dave");
    dave.expect("! the server is reconnecting; try again in a moment");
    dave.expect("Choose a nickname (up to 16 characters):");
    let stats = ctl_json(&a, &["stats"]);
    assert_eq!(stats["cluster"]["connected"], false);
    nats.resume();
    a.wait_log("cluster: NATS connected");
    b.wait_log("cluster: NATS connected");
    // Back: new logins, and chat across nodes again.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        dave.say("dave");
        let line = dave.line();
        if line.starts_with("* welcome, dave!") {
            break;
        }
        assert!(Instant::now() < deadline, "logins never came back: {line}");
        dave.line();
        std::thread::sleep(Duration::from_millis(200));
    }
    alice.say("across again");
    until(&mut bob, "<alice> across again");
}

#[test]
fn a_stalled_node_does_not_slow_the_others() {
    let Some(nats) = Nats::start("a_stalled_node_does_not_slow_the_others") else {
        return;
    };
    let (a, b) = two_nodes(&nats);
    let mut alice = a.login("alice");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    let mut carol = b.login("carol");
    alice.expect("* carol joined");
    // (bob may hear of alice, on the other node, just after his own login.)
    until(&mut bob, "* carol joined");
    // Node a stops taking anything (for less than the node timeout).
    a.signal(Signal::STOP);
    let stalled = Instant::now();
    for i in 0..100 {
        bob.say(&format!("m{i}"));
    }
    for i in 0..100 {
        carol.expect(&format!("<bob> m{i}"));
    }
    let took = stalled.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "{took:?}: the stalled node held b up"
    );
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(took));
    a.signal(Signal::CONT);
    // What it missed while stopped arrives once it runs (or is counted in stats).
    for i in 0..100 {
        alice.expect(&format!("<bob> m{i}"));
    }
    let stats = ctl_json(&a, &["stats"]);
    assert_eq!(stats["cluster"]["missed"], 0);
    assert_eq!(stats["cluster"]["connected"], true);
    assert_eq!(stats["cluster"]["nodes"][0], "b");
}

#[test]
fn a_node_started_without_nats_joins_when_it_comes() {
    let Some(mut nats) = Nats::start("a_node_started_without_nats_joins_when_it_comes") else {
        return;
    };
    let a = node(&nats, "a");
    nats.stop();
    let b = node(&nats, "b");
    b.wait_log("cluster: NATS unreachable");
    let mut c = b.connect();
    c.expect_greeting();
    c.say("bob");
    c.expect("! the server is reconnecting; try again in a moment");
    c.line();
    nats.resume();
    b.wait_log("cluster: NATS connected");
    let deadline = Instant::now() + TIMEOUT;
    let mut bob = loop {
        c.say("bob");
        let line = c.line();
        if line.starts_with("* welcome, bob!") {
            c.line();
            break c;
        }
        assert!(Instant::now() < deadline, "{line}");
        c.line();
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut alice = a.login("alice");
    until(&mut bob, "* alice joined");
    alice.say("hi");
    until(&mut bob, "<alice> hi");
}

#[test]
fn a_second_node_with_a_live_name_is_refused() {
    let Some(nats) = Nats::start("a_second_node_with_a_live_name_is_refused") else {
        return;
    };
    let _a = node(&nats, "a");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("natter.toml");
    std::fs::write(
        &config,
        format!(
            "{BASE_CONFIG}[admin]\nsocket = \"{}\"\n{}",
            dir.path().join("s.sock").display(),
            nats.cluster("a")
        ),
    )
    .unwrap();
    let out = common::natterd_once(&config, &dir.path().join("state"));
    assert!(!out.status.success());
    let err = common::text(&out.stderr);
    assert!(err.contains("node name \"a\" is already live"), "{err}");
}

#[test]
fn haproxy_in_front_of_a_cluster() {
    let Some(nats) = Nats::start("haproxy_in_front_of_a_cluster") else {
        return;
    };
    if !common::haproxy::have("haproxy", "haproxy_in_front_of_a_cluster") {
        return;
    }
    let trusted = "[server]\nlisten = [\"127.0.0.1:0\"]\nproxy_protocol = [\"127.0.0.1/32\"]\n\
                   [chat]\ntimestamps = false\n";
    let nodes = [
        Daemon::with_config(&format!("{trusted}{}", nats.cluster("a"))),
        Daemon::with_config(&format!("{trusted}{}", nats.cluster("b"))),
    ];
    nodes[0].wait_log("cluster: node joined node=b");
    let port = common::haproxy::free_port();
    let _haproxy = common::haproxy::Haproxy::start(port, [nodes[0].addr(), nodes[1].addr()]);
    for node in &nodes {
        node.wait_log("connection accepted");
    }
    let front: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let login = |source: [u8; 4], nick: &str| {
        let mut c = Client::connect_from(source.into(), front);
        c.expect_greeting();
        c.say(nick);
        let line = c.line();
        assert!(line.starts_with(&format!("* welcome, {nick}!")), "{line}");
        c.line();
        c
    };
    let mut alice = login([127, 0, 0, 5], "alice");
    let mut bob = login([127, 0, 0, 6], "bob");
    let on = |nick: &str| {
        let list = ctl_json(&nodes[0], &["list"]);
        let conns = list["connections"].as_array().unwrap().clone();
        let me = conns
            .into_iter()
            .find(|c| c["nick"] == nick)
            .expect("listed");
        (
            me["node"].as_str().unwrap().to_owned(),
            me["peer"].as_str().unwrap().to_owned(),
        )
    };
    let (alice_node, alice_peer) = on("alice");
    let (bob_node, bob_peer) = on("bob");
    assert_ne!(
        alice_node, bob_node,
        "leastconn put them on different nodes"
    );
    assert!(alice_peer.starts_with("127.0.0.5:") && bob_peer.starts_with("127.0.0.6:"));
    // They chat across nodes through the one front address.
    both_listed(&mut bob, "* 2 online in #lobby: alice, bob");
    alice.say("hi bob");
    until(&mut bob, "<alice> hi bob");
    // Kill alice's node: bob sees her leave; she comes back through HAProxy on the other.
    let [first, second] = nodes;
    let (mut gone, _kept) = if alice_node == "a" {
        (first, second)
    } else {
        (second, first)
    };
    gone.signal(Signal::KILL);
    gone.wait_exit();
    until(&mut bob, "* alice left");
    let deadline = Instant::now() + TIMEOUT;
    let mut again = loop {
        let mut c = Client::connect_from([127, 0, 0, 5].into(), front);
        c.expect_greeting();
        c.say("alice");
        let line = c.line();
        if line.starts_with("* welcome, alice!") {
            break c;
        }
        assert!(Instant::now() < deadline, "{line}");
        std::thread::sleep(Duration::from_millis(200));
    };
    again.line();
    until(&mut bob, "* alice joined");
    again.say("back");
    until(&mut bob, "<alice> back");
}

#[test]
fn nodes_talk_tls_to_nats() {
    let Some(certs) = common::certs::Certs::make("nodes_talk_tls_to_nats") else {
        return;
    };
    let dir = certs.dir.path();
    let path = |f: &str| dir.join(f).display().to_string();
    let tls = [
        "--tls",
        "--tlscert",
        &path("server.pem"),
        "--tlskey",
        &path("server.key"),
    ]
    .map(str::to_owned);
    let Some(nats) = Nats::start_with("nodes_talk_tls_to_nats", &tls) else {
        return;
    };
    let config = |node: &str| {
        format!(
            "{BASE_CONFIG}[cluster]\nnats = \"tls://127.0.0.1:{}\"\nnode = \"{node}\"\n\
             node_timeout = \"3s\"\ntls_ca = \"{}\"\n",
            nats.port,
            path("ca.pem")
        )
    };
    let a = Daemon::with_config(&config("a"));
    let b = Daemon::with_config(&config("b"));
    a.wait_log("cluster: connected to NATS");
    b.wait_log("cluster: node joined node=a");
    let mut alice = a.login("alice");
    let mut bob = b.login("bob");
    alice.expect("* bob joined");
    bob.say("over tls");
    until(&mut alice, "<bob> over tls");
    // A node that does not trust the server's certificate gets nowhere: it serves alone.
    let stranger = Daemon::with_config(&format!(
        "{BASE_CONFIG}[cluster]\nnats = \"tls://127.0.0.1:{}\"\nnode = \"c\"\n",
        nats.port
    ));
    stranger.wait_log("cluster: NATS unreachable");
}
