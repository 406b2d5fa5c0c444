//! What an attacker with one `nc` (and `natterctl`) tried, and what natterd does about it.
//! Each test is named after what it attacks; each failed on the code before the fix.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{BASE_CONFIG, Client, Daemon, Signal, barrier, text, unstamp};

/// How long each flood runs.
const FLOOD: Duration = Duration::from_secs(3);

/// Flood control off: only the runtime's fairness stands between a flood and everyone else.
const NO_FLOOD_CONTROL: &str = BASE_CONFIG;

/// A client that sends `unit` over and over without pause and never reads, until stopped
/// or [`FLOOD`] is over. With `nick` it logs in first.
struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Flood {
    fn start(d: &Daemon, nick: Option<&str>, unit: &[u8]) -> Flood {
        let stream = match nick {
            Some(nick) => {
                let c = d.login(nick);
                c.into_stream()
            }
            None => {
                let mut c = d.connect();
                c.expect_greeting();
                c.into_stream()
            }
        };
        let chunk = unit.repeat((65536 / unit.len()).max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut stream: TcpStream = stream;
            stream
                .set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let end = Instant::now() + FLOOD;
            let mut sent = 0u64;
            while Instant::now() < end && !stopped.load(Ordering::Relaxed) {
                match stream.write(&chunk) {
                    Ok(n) => sent += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            sent
        });
        Flood {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the flood now; returns the bytes it sent.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.run_out()
    }

    /// Lets the flood run its course; returns the bytes it sent.
    fn run_out(mut self) -> u64 {
        self.thread.take().unwrap().join().unwrap()
    }
}

/// While `unit` floods natterd from as many connections as it has worker threads (one per
/// core: a task that never yields holds a whole worker), alice and bob keep chatting without
/// delay and natterctl answers; then SIGTERM stops natterd within its bound.
fn others_are_unaffected(config: &str, nick: Option<&str>, unit: &[u8]) {
    let mut d = Daemon::with_config(config);
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let mut floods = Vec::new();
    for i in 0..workers {
        let nick = nick.map(|n| format!("{n}{i}"));
        floods.push(Flood::start(&d, nick.as_deref(), unit));
        if let Some(nick) = nick {
            alice.expect(&format!("* {nick} joined"));
            bob.expect(&format!("* {nick} joined"));
        }
    }
    let started = Instant::now();
    let mut delays = Vec::new();
    let mut stats = Vec::new();
    let mut i = 0;
    while started.elapsed() < FLOOD - Duration::from_millis(500) && i < 50 {
        let sent = Instant::now();
        alice.say(&format!("@bob ping {i}"));
        bob.expect(&format!("[alice -> bob] ping {i}"));
        delays.push(sent.elapsed());
        alice.expect(&format!("[alice -> bob] ping {i}"));
        if i % 5 == 0 {
            let asked = Instant::now();
            let out = d.ctl(&["stats"]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            stats.push(asked.elapsed());
        }
        i += 1;
    }
    delays.sort();
    stats.sort();
    let median = delays[delays.len() / 2];
    let worst = *delays.last().unwrap();
    eprintln!(
        "{} messages: median {median:?}, worst {worst:?}; natterctl stats: median {:?}, worst {:?}",
        delays.len(),
        stats[stats.len() / 2],
        stats.last().unwrap()
    );
    assert!(
        delays.len() >= 5,
        "only {} messages got through",
        delays.len()
    );
    assert!(median <= Duration::from_millis(100), "median {median:?}");
    assert!(worst <= Duration::from_secs(1), "worst {worst:?}");
    assert!(
        stats[stats.len() / 2] <= Duration::from_millis(500),
        "{stats:?}"
    );
    // SIGTERM while the flood still runs: natterd finishes within its bound.
    let asked = Instant::now();
    d.signal(Signal::TERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.log());
    eprintln!("shutdown took {:?}", asked.elapsed());
    for flood in floods {
        flood.finish();
    }
}

#[test]
fn nickname_attempt_flood_at_the_prompt() {
    others_are_unaffected(NO_FLOOD_CONTROL, None, b"admin\r\n");
}

#[test]
fn empty_line_flood_after_login() {
    others_are_unaffected(NO_FLOOD_CONTROL, Some("flooder"), b"\r\n");
}

#[test]
fn bare_cr_flood_after_login() {
    others_are_unaffected(NO_FLOOD_CONTROL, Some("flooder"), b"\r");
}

#[test]
fn unknown_command_flood() {
    others_are_unaffected(NO_FLOOD_CONTROL, Some("flooder"), b"/nope\r\n");
}

#[test]
fn over_long_line_flood() {
    let mut line = vec![b'x'; 600];
    line.extend_from_slice(b"\r\n");
    others_are_unaffected(NO_FLOOD_CONTROL, Some("flooder"), &line);
}

#[test]
fn telnet_command_flood() {
    // NOP, DO TIMING-MARK (answered every time) and AYT, without pause.
    others_are_unaffected(
        NO_FLOOD_CONTROL,
        Some("flooder"),
        b"\xff\xf1\xff\xfd\x06\xff\xf6",
    );
}

#[test]
fn every_flood_kind_with_flood_control_on() {
    // A burst large enough for alice's pings, so only the flooder is held back.
    let config = format!("{BASE_CONFIG}[limits]\nflood_rate = 2\nflood_burst = 100\n");
    others_are_unaffected(&config, None, b"admin\r\n");
    others_are_unaffected(&config, Some("flooder"), b"\r");
    others_are_unaffected(&config, Some("flooder"), b"\xff\xfd\x06");
}

/// Flood control counts every line before login too, and telnet commands at a cost.
#[test]
fn flood_control_covers_nickname_attempts_empty_lines_and_telnet_commands() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nflood_rate = 2\nflood_burst = 5\n"
    ));
    // 100 nickname attempts at once: 5 answered at once, then "slow down", then paced.
    let mut c = d.connect();
    c.expect_greeting();
    c.send("admin\r\n".repeat(100));
    for _ in 0..5 {
        c.expect("! nickname reserved: admin");
        c.expect("Choose a nickname (up to 16 characters):");
    }
    c.expect("! slow down: 2 lines per second at most");
    // The sixth comes only when the rate allows: about half a second later.
    let waited = Instant::now();
    c.expect("! nickname reserved: admin");
    assert!(waited.elapsed() >= Duration::from_millis(300), "{waited:?}");

    // Empty lines cost a token too, and no longer re-send the prompt: after 5 of them a
    // nickname waits its turn.
    let mut e = d.connect();
    e.expect_greeting();
    e.send("\r\n\r\r\n\r\n\r\ncarol\r\n");
    e.expect("! slow down: 2 lines per second at most");
    let line = e.line();
    assert!(unstamp(&line).starts_with("* welcome, carol! "), "{line}");

    // A stream of telnet commands is paced like lines: 60 DO TIMING-MARKs cost 6 lines,
    // more than the burst, so the nickname after them waits until the debt is paid.
    let mut t = d.connect();
    t.expect_greeting();
    let sent = Instant::now();
    t.send(b"\xff\xfd\x06".repeat(60));
    t.send("dave\r\n");
    let out = t.read_until(b"welcome, dave!");
    assert!(sent.elapsed() >= Duration::from_millis(700), "{sent:?}");
    let replies = out.windows(3).filter(|w| w == b"\xff\xfc\x06").count();
    assert_eq!(replies, 60, "every timing mark is answered");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(
        out.matches("! slow down: 2 lines per second at most")
            .count(),
        1
    );
}

/// One connection refused nicknames in a loop wrote 370 MB of log in 10 s: client-caused
/// log events are now held to a per-connection and a total rate, with a periodic count.
#[test]
fn log_flood_through_refused_nicknames() {
    let d = Daemon::with_config(NO_FLOOD_CONTROL);
    let flood = Flood::start(&d, None, b"admin\r\n");
    let sent = flood.run_out();
    assert!(sent > 100_000, "the flood sent only {sent} bytes");
    d.wait_log_within("similar events suppressed", Duration::from_secs(15));
    let log = d.log();
    let refused = log.matches("nickname refused").count();
    // 20 at once, then one every 2 s.
    assert!(refused <= 30, "{refused} refusals logged");
    assert!(log.len() < 64 * 1024, "{} bytes of log", log.len());
    let out = d.ctl(&["--json", "stats"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["log_events_suppressed"].as_u64().unwrap() > 1000);
}

fn from(source: [u8; 4], d: &Daemon) -> Client {
    Client::connect_from(source.into(), d.addr())
}

/// One address connecting in a loop: at most `connects_per_minute_per_ip` new connections
/// a minute, told why and when to try again; other addresses are unaffected.
#[test]
fn connection_churn_from_one_address() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nconnects_per_minute_per_ip = 5\n"
    ));
    for _ in 0..5 {
        let mut c = from([127, 0, 0, 3], &d);
        c.expect_greeting();
    }
    let mut c = from([127, 0, 0, 3], &d);
    let line = c.line();
    assert!(
        line.starts_with("! too many connections from your address; try again in ")
            && line.ends_with(" s"),
        "{line}"
    );
    c.expect_closed();
    let mut other = from([127, 0, 0, 4], &d);
    other.expect_greeting();
    d.wait_log("connection refused cause=\"connect_rate\"");
    let out = d.ctl(&["--json", "stats"]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["refused"]["connect_rate"], 1);
}

/// Logging in and out in a loop from one address sent every user a join and a leave line
/// each time: announcements for one address are paced (10 at once, then 10 a minute).
#[test]
fn join_leave_churn_from_one_address() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nannounces_per_minute_per_ip = 10\n"
    ));
    let mut watcher = from([127, 0, 0, 2], &d);
    watcher = d.login_on(watcher, "watcher");
    for i in 0..15 {
        let mut c = d.login_on(from([127, 0, 0, 3], &d), &format!("churn{i}"));
        c.say("/quit");
        assert!(c.line().ends_with(&format!("bye, churn{i}")));
        c.expect_closed();
    }
    for i in 0..10 {
        watcher.expect(&format!("* churn{i} joined"));
        watcher.expect(&format!("* churn{i} left"));
    }
    // The other five came and went unannounced: the next thing the watcher sees is this.
    let mut friend = d.login_on(from([127, 0, 0, 4], &d), "friend");
    watcher.expect("* friend joined");
    barrier(&mut friend, "friend", &mut watcher, "watcher");
    // They were really there: the sixth-from-last could be spoken to while online.
    let mut quiet = d.login_on(from([127, 0, 0, 3], &d), "quiet");
    watcher.say("@quiet hello");
    quiet.expect("[watcher -> quiet] hello");
}

/// `/report` limits reset when the reporter reconnected; they are now kept per address.
#[test]
fn report_pacing_survives_reconnecting() {
    let d = Daemon::start();
    for round in 0..2 {
        let mut c = d.login_on(from([127, 0, 0, 5], &d), &format!("reporter{round}"));
        let reports = if round == 0 { 3 } else { 0 };
        for _ in 0..reports {
            c.say("/report mallory spam");
            c.expect("* report about mallory sent to the operators");
        }
        c.say("/report mallory spam");
        let line = c.line();
        assert!(
            line.starts_with("! too many reports; try again in "),
            "round {round}: {line}"
        );
    }
    // Another address still may.
    let mut other = d.login_on(from([127, 0, 0, 6], &d), "other");
    other.say("/report mallory spam");
    other.expect("* report about mallory sent to the operators");
}

/// Nicknames that differ only by invisible characters passed as distinct, blank-looking
/// nicknames were accepted, and Cyrillic look-alikes passed for Latin names.
#[test]
fn invisible_and_look_alike_nicknames() {
    let d = Daemon::start();
    let mut bob = d.login("bob");
    let out = d.ctl(&["ban", "mallory", "--reason", "spam"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = d.ctl(&["mute", "carol"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut c = d.connect();
    c.expect_greeting();
    let prompt = "Choose a nickname (up to 16 characters):";
    for (nick, error) in [
        ("bob\u{34f}", "! nickname already taken: bob"),
        ("b\u{ad}ob", "! nickname already taken: bob"),
        ("bob\u{fe0f}", "! nickname already taken: bob"),
        ("b\u{43e}b", "! nickname already taken: b\u{43e}b"),
        ("admin\u{34f}", "! nickname reserved: admin"),
        ("adm\u{ad}in", "! nickname reserved: admin"),
        ("\u{430}dmin", "! nickname reserved: \u{430}dmin"),
        ("r\u{180e}oot", "! nickname reserved: root"),
    ] {
        c.say(nick);
        c.expect(error);
        c.expect(prompt);
    }
    // Blank-looking nicknames are blank lines once cleaned: no login, no answer (the next
    // line is the answer to the next try); marks with nothing to sit on are refused.
    for blank in [
        "\u{3164}",
        "\u{ffa0}",
        "\u{2800}",
        "\u{3164}\u{2800}\u{ffa0}",
    ] {
        c.say(blank);
    }
    c.say("\u{301}\u{34f}");
    c.expect("! nickname needs a visible letter, digit or symbol: \u{301}");
    c.expect(prompt);
    // A ban and a mute on a nickname hold for its invisible and look-alike variants.
    c.say("mallory\u{34f}");
    assert!(c.line().starts_with("! you are banned: spam"));
    c.expect_closed();
    let mut m = d.connect();
    m.expect_greeting();
    m.say("m\u{430}llory");
    assert!(m.line().starts_with("! you are banned: spam"));
    let mut carol = d.connect();
    carol.expect_greeting();
    carol.say("c\u{ad}arol");
    carol.expect("* welcome, carol! 2 users online; /h shows help");
    carol.expect("* you are in #lobby (2 here)");
    bob.expect("* carol joined");
    carol.say("hello");
    carol.expect("! you are muted");
    barrier(&mut bob, "bob", &mut carol, "carol");
}

/// Chat text kept the soft hyphen, Hangul fillers, deprecated format characters and
/// variation selectors that hide or fake text.
#[test]
fn invisible_characters_in_chat_text() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    alice.say("a\u{ad}b\u{3164}c\u{ffa0}d\u{206a}e\u{fe0f}\u{fe0f}f\u{34f}g\u{2800}h");
    bob.expect("<alice> abcde\u{fe0f}fgh");
    // A line of nothing but invisible characters is no line at all.
    alice.say("\u{3164}\u{ad}\u{2800}\u{200d}");
    barrier(&mut alice, "alice", &mut bob, "bob");
}

fn stats_json(d: &Daemon) -> serde_json::Value {
    let out = d.ctl(&["--json", "stats"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn list_json(d: &Daemon) -> serde_json::Value {
    let out = d.ctl(&["--json", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// natterctl refused replies over 64 KiB: `list` failed past about 400 connections and
/// `bans` past about 700 rules.
#[test]
fn large_admin_replies() {
    let d = Daemon::start();
    // 5,000 bans, written as natterd keeps them, then read at start.
    let bans: Vec<serde_json::Value> = (0..5000u32)
        .map(|i| {
            let [_, _, b, c] = i.to_be_bytes();
            serde_json::json!({
                "target": format!("10.{b}.{c}.1"),
                "reason": "a reason long enough to make the reply big",
                "set_by": 0,
                "set_at": "2026-12-01T00:00:00Z",
            })
        })
        .collect();
    let rules = serde_json::json!({ "bans": bans, "mutes": [] });
    std::fs::write(d.state_dir().join("bans.json"), rules.to_string()).unwrap();
    let mut d = d;
    d.restart();
    let out = d.ctl(&["bans"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("10.")).count(),
        5000
    );
    let out = d.ctl(&["--json", "bans"]);
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["bans"].as_array().unwrap().len(), 5000);

    // 2,000 connections at the prompt.
    let clients: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(d.addr()).unwrap())
        .collect();
    let deadline = Instant::now() + common::TIMEOUT;
    loop {
        let listed = list_json(&d)["connections"].as_array().unwrap().len();
        if listed == 2000 {
            break;
        }
        assert!(Instant::now() < deadline, "{listed} listed");
    }
    let out = d.ctl(&["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).lines().count() > 2000);
    drop(clients);
}

/// `n` admin connections that each send 20,000 requests and never read a reply.
fn stall_admin(d: &Daemon, n: usize) -> Vec<std::os::unix::net::UnixStream> {
    let request = "{\"cmd\":\"stats\"}\n".repeat(20_000);
    (0..n)
        .map(|_| {
            let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
            s.set_write_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let _ = s.write_all(request.as_bytes());
            s
        })
        .collect()
}

/// Eight admin connections that sent requests and never read the replies, with a ninth
/// waiting for a place, kept natterd running long after SIGTERM.
#[test]
fn admin_connections_that_never_read() {
    let mut d = Daemon::start();
    let stalled = stall_admin(&d, 8);
    // Each is closed once it has taken no reply bytes for the write timeout; meanwhile a
    // ninth waits, and is then served.
    let started = Instant::now();
    let out = d.ctl(&["--timeout", "20", "stats"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    eprintln!("the ninth was served after {:?}", started.elapsed());
    d.wait_log("admin connection closed: it does not read its replies");
    // Again stalled, and SIGTERM: natterd ends within its bound.
    let stalled_again = stall_admin(&d, 9);
    let asked = Instant::now();
    d.signal(Signal::TERM);
    assert_eq!(d.wait_exit(), Some(0), "{}", d.log());
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    drop((stalled, stalled_again));
}

/// A chat client whose socket buffer is as small as the kernel allows, so natterd's queue
/// for it fills after a few kilobytes.
fn stalled_reader(d: &Daemon, nick: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    socket
        .connect_timeout(&d.addr().into(), common::TIMEOUT)
        .unwrap();
    let mut stream = TcpStream::from(socket);
    stream.write_all(format!("{nick}\r\n").as_bytes()).unwrap();
    stream
}

/// Sends short group messages from `from` until every connection named `slow*` has
/// missed some (its queue is full). Paced by looking between batches, so natterd (a debug
/// build, sharing two cores with other tests) never has far more to fan out than needed.
fn fill_queues(d: &Daemon, from: &mut Client) {
    let batch = "m\r\n".repeat(200);
    let deadline = Instant::now() + 6 * common::TIMEOUT;
    while Instant::now() < deadline {
        from.send(&batch);
        let list = list_json(d);
        let conns = list["connections"].as_array().unwrap();
        let slow = conns
            .iter()
            .filter(|c| c["nick"].as_str().is_some_and(|n| n.starts_with("slow")));
        if slow.clone().count() > 0 && slow.clone().all(|c| c["skipped"].as_u64() > Some(0)) {
            return;
        }
    }
    panic!("queues never filled");
}

/// 400 stalled readers with 100 MB of queued text held 467 MB: the queues' bookkeeping was
/// not counted. Now RSS stays within base + readers × send_queue_bytes × 1.25.
#[test]
fn stalled_readers_memory() {
    const READERS: usize = 200;
    const QUEUE: u64 = 16384;
    // No join announcements: 200 of them would overflow the first readers' queues before the
    // test begins (a server line that does not fit cuts a client off).
    let quiet = BASE_CONFIG.replace("[chat]\n", "[chat]\nannounce_max = 1\n");
    let d = Daemon::with_config(&format!(
        "{quiet}[limits]\nsend_queue_bytes = {QUEUE}\nwrite_timeout = 0\n"
    ));
    let mut alice = d.login("alice");
    let readers: Vec<TcpStream> = (0..READERS)
        .map(|i| stalled_reader(&d, &format!("slow{i}")))
        .collect();
    let deadline = Instant::now() + 3 * common::TIMEOUT;
    while stats_json(&d)["users_online"].as_u64() != Some(READERS as u64 + 1) {
        assert!(Instant::now() < deadline, "readers never logged in");
    }
    let base = common::rss_kib(d.pid()).unwrap();
    fill_queues(&d, &mut alice);
    let full = common::rss_kib(d.pid()).unwrap();
    let bound = base + READERS as u64 * QUEUE * 5 / 4 / 1024;
    eprintln!("RSS {base} KiB with {READERS} readers, {full} KiB with full queues (bound {bound})");
    assert!(
        full <= bound,
        "RSS {full} KiB over {bound} KiB (base {base})"
    );
    drop(readers);
}

/// At shutdown a client whose queue was full was dropped at once, without the notice.
#[test]
fn shutdown_notice_reaches_a_full_queue() {
    let mut d = Daemon::with_config(&format!("{BASE_CONFIG}[limits]\nsend_queue_bytes = 8192\n"));
    let mut alice = d.login("alice");
    let slow = stalled_reader(&d, "slow");
    alice.expect("* slow joined");
    fill_queues(&d, &mut alice);
    d.signal(Signal::TERM);
    // Now it reads, through a normal receive buffer (a 1 KiB window makes TCP crawl): what
    // was queued, the count of what it missed, and the notice last.
    socket2::SockRef::from(&slow)
        .set_recv_buffer_size(256 * 1024)
        .unwrap();
    let mut slow = Client::from_stream(slow);
    let all = slow.read_until(b"* server shutting down\r\n");
    let all = String::from_utf8_lossy(&all);
    assert!(all.contains("messages skipped (you are reading too slowly)"));
    slow.expect_closed();
    assert_eq!(d.wait_exit(), Some(0), "{}", d.log());
}

fn ctl_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn ctl_err(d: &Daemon, args: &[&str]) -> (Option<i32>, String) {
    let out = d.ctl(args);
    (out.status.code(), text(&out.stderr))
}

/// IPv4-mapped ban targets did not apply until a restart (or never, for ranges), and
/// addresses that did not parse were stored as nickname bans.
#[test]
fn mapped_and_malformed_ban_targets() {
    let d = Daemon::start();
    let refused = |source: [u8; 4]| {
        let mut c = from(source, &d);
        let line = c.line();
        assert!(line.starts_with("! you are banned"), "{source:?}: {line}");
    };
    assert_eq!(
        ctl_ok(&d, &["ban", "::ffff:127.0.0.5/128"]),
        "banned 127.0.0.5 until lifted\n"
    );
    refused([127, 0, 0, 5]);
    ctl_ok(&d, &["unban", "127.0.0.5"]);
    assert_eq!(
        ctl_ok(&d, &["ban", "::ffff:127.0.0.0/104"]),
        "banned 127.0.0.0/8 until lifted\n"
    );
    refused([127, 0, 0, 9]);
    ctl_ok(&d, &["unban", "::ffff:127.0.0.0/104"]);
    for (target, error) in [
        ("10.0.0.256", "not a valid address: 10.0.0.256"),
        (
            "127.0.0.300/24",
            "not a valid address range: 127.0.0.300/24",
        ),
    ] {
        let (code, err) = ctl_err(&d, &["ban", target]);
        assert_eq!(code, Some(1), "{target}");
        assert!(err.contains(error), "{target}: {err}");
    }
    assert_eq!(ctl_ok(&d, &["bans"]), "no bans\n\nno mutes\n");
}

/// `ban … --for 18446744073709551615s` panicked the admin task.
#[test]
fn huge_ban_durations() {
    let d = Daemon::start();
    let (code, err) = ctl_err(&d, &["ban", "mallory", "--for", "18446744073709551615s"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("must be at most 10 years"), "{err}");
    // The same number straight over the socket.
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    for cmd in ["ban\",\"target\":\"mallory", "mute\",\"nick\":\"mallory"] {
        writeln!(s, "{{\"cmd\":\"{cmd}\",\"for_secs\":18446744073709551615}}").unwrap();
    }
    writeln!(s, "{{\"cmd\":\"stats\"}}").unwrap();
    let mut replies = std::io::BufReader::new(s);
    for _ in 0..2 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut replies, &mut line).unwrap();
        assert!(
            line.contains("duration too long: at most 10 years"),
            "{line}"
        );
    }
    let mut line = String::new();
    std::io::BufRead::read_line(&mut replies, &mut line).unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
    // Ten years is allowed.
    ctl_ok(&d, &["ban", "mallory", "--for", "3650d"]);
}

fn natterd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_natterd"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// `--check-config` accepted `flood_rate = 1e-20` and `login_timeout = i64::MAX`, and then
/// every session panicked.
#[test]
fn extreme_config_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    for (setting, error) in [
        (
            "flood_rate = 1e-20",
            "limits.flood_rate: must be 0 (off) or from 0.01 to 1000",
        ),
        (
            "flood_rate = inf",
            "limits.flood_rate: must be 0 (off) or from 0.01 to 1000",
        ),
        (
            "login_timeout = 9223372036854775807",
            "limits.login_timeout: must be from 0 to 86400",
        ),
        (
            "idle_timeout = 9223372036854775807",
            "limits.idle_timeout: must be from 0 to 2592000",
        ),
        (
            "flood_burst = 4294967295",
            "limits.flood_burst: must be from 1 to 10000",
        ),
        (
            "connects_per_minute_per_ip = 4294967295",
            "must be from 0 to 100000",
        ),
    ] {
        std::fs::write(&path, format!("[limits]\n{setting}\n")).unwrap();
        let out = natterd(&["--check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{setting}");
        assert!(
            text(&out.stderr).contains(error),
            "{setting}: {}",
            text(&out.stderr)
        );
    }
    // A reload with such a value is refused the same way, and natterd goes on.
    let d = Daemon::start();
    let good = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        good.replace("[limits]\n", "[limits]\nwrite_timeout = 86401\n"),
    )
    .unwrap();
    let (code, err) = ctl_err(&d, &["reload"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("limits.write_timeout: must be from 0 to 86400"),
        "{err}"
    );
    let mut c = d.login("alice");
    c.say("/ls");
    c.expect("* 1 online in #lobby: alice");
}

/// A state directory anyone could write to was accepted, and the ban file's temporary file
/// followed a planted symlink.
#[test]
fn writable_state_directory_and_planted_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start();
    let state = d.state_dir();
    // The temporary name natterd once used, pointing at a file it must never write.
    let victim = d.dir().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, state.join("bans.json.tmp")).unwrap();
    ctl_ok(&d, &["ban", "mallory"]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::read_to_string(state.join("bans.json"))
            .unwrap()
            .contains("mallory")
    );
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp") && n != "bans.json.tmp")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Group- or world-writable state and socket directories are refused at start.
    drop(d);
    let dir = tempfile::tempdir().unwrap();
    for (which, mode) in [
        ("state", 0o777),
        ("state", 0o770),
        ("state", 0o1777),
        ("run", 0o777),
        ("run", 0o770),
    ] {
        let state = dir.path().join("state");
        let run = dir.path().join("run");
        for d in [&state, &run] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let target = dir.path().join(which);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
        let config = dir.path().join("n.toml");
        let socket = run.join("admin.sock");
        std::fs::write(
            &config,
            format!(
                "{BASE_CONFIG}[admin]\nsocket = {:?}\n",
                socket.display().to_string()
            ),
        )
        .unwrap();
        let out = common::natterd_once(&config, &state);
        assert_eq!(out.status.code(), Some(1), "{which} {mode:o}");
        let err = text(&out.stderr);
        assert!(
            err.contains("is writable by its group or by others") && err.contains("chmod go-w"),
            "{which} {mode:o}: {err}"
        );
    }
}

/// Bidi and control characters in ban reasons (from a hand-edited file) were printed raw by
/// `natterctl bans`.
#[test]
fn terminal_controls_in_ban_listings() {
    let d = Daemon::start();
    let rules = serde_json::json!({
        "bans": [{
            "target": "10.0.0.1",
            "reason": "evil\u{202e}desrever\u{1b}[2J",
            "set_by": 0,
            "set_at": "2026-12-01T00:00:00Z",
        }],
        "mutes": [],
    });
    std::fs::write(d.state_dir().join("bans.json"), rules.to_string()).unwrap();
    let mut d = d;
    d.restart();
    let out = ctl_ok(&d, &["bans"]);
    assert!(
        !out.chars().any(|c| c == '\u{202e}' || c == '\u{1b}'),
        "{out:?}"
    );
    assert!(out.contains("evil\\u{202e}desrever\\u{001b}[2J"), "{out}");
    // Nickname targets keep only what users see.
    assert_eq!(
        ctl_ok(&d, &["ban", "mal\u{202e}lory\u{ad}"]),
        "banned mallory until lifted\n"
    );
}

/// "cannot save" was logged every 5 s while the state directory could not be written.
#[test]
fn unwritable_state_is_reported_once() {
    let d = Daemon::start();
    ctl_ok(&d, &["ban", "mallory", "--for", "1s"]);
    let file = d.state_dir().join("bans.json");
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    d.wait_log_within("cannot save bans and mutes", Duration::from_secs(8));
    // Two more sweeps, and still one line.
    let seen = Instant::now();
    let deadline = seen + Duration::from_secs(11);
    while Instant::now() < deadline {
        assert_eq!(d.log().matches("cannot save bans and mutes").count(), 1);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_dir(&file).unwrap();
    d.wait_log_within("bans and mutes saved again", Duration::from_secs(8));
}

/// Each empty line at the nickname prompt re-sent the whole prompt.
#[test]
fn empty_lines_at_the_prompt_are_not_amplified() {
    let d = Daemon::start();
    let mut c = d.connect();
    c.expect_greeting();
    c.send("\r".repeat(10_000));
    c.say("alice");
    let line = c.line();
    assert!(unstamp(&line).starts_with("* welcome, alice! "), "{line}");
}

/// A line held back by flood control (or by a turn's quota) with nothing after it in the
/// buffer waited for more input that might never come: with LF line ends (nc), the last
/// line of a paste stayed stuck.
#[test]
fn the_last_held_line_of_a_paste_is_not_stuck() {
    let d = Daemon::with_config(&format!(
        "{BASE_CONFIG}[limits]\nflood_burst = 2\nflood_rate = 20\n"
    ));
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let paste: String = (0..6).map(|i| format!("line {i}\n")).collect();
    alice.send(&paste);
    for i in 0..6 {
        bob.expect(&format!("<alice> line {i}"));
    }
    // Unpaced too: more lines in one read than a turn's quota, the last one LF-ended.
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    let paste: String = (0..40).map(|i| format!("quick {i}\n")).collect();
    alice.send(&paste);
    for i in 0..40 {
        bob.expect(&format!("<alice> quick {i}"));
    }
}
