//! Test harness: starts the real natterd on an ephemeral port and talks to it over TCP the
//! way nc or telnet would. Every wait is bounded by [`TIMEOUT`].

#![allow(dead_code)] // each test binary uses a different part

pub mod admin;
pub mod certs;
pub mod haproxy;
pub mod nats;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub use rustix::process::Signal;
use rustix::process::{Pid, kill_process};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any single wait in a test may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What natterd sends first when telnet binary mode is on.
pub const HELLO: &[u8] = b"\xff\xfd\x00\r\x00";

/// Listens on one loopback port with timestamps off.
pub const BASE_CONFIG: &str = "[server]\nlisten = [\"127.0.0.1:0\"]\n[chat]\ntimestamps = false\n";

/// A running natterd, killed when dropped.
pub struct Daemon {
    child: Child,
    /// The addresses it reported listening on, in config order.
    pub addrs: Vec<SocketAddr>,
    /// Its admin socket.
    pub socket: PathBuf,
    /// Its config file, which tests may rewrite before a reload.
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// Starts natterd on `config` with `env` and waits until it listens on every `:0` address
/// the file names; returns it, its addresses and its growing log.
fn launch(config: &Path, env: &[(String, String)]) -> (Child, Vec<SocketAddr>, Arc<Mutex<String>>) {
    let toml = std::fs::read_to_string(config).expect("read config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start natterd");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    // Keep draining stderr for the daemon's whole life so logging never blocks it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap_or("");
                let _ = tx.send(addr.parse::<SocketAddr>());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    // Chat listeners on port 0, each reported once bound (`[server] listen = [...]`; the
    // metrics `listen = "..."` is a plain string and reported otherwise).
    let wanted = toml
        .lines()
        .filter(|l| l.trim_start().starts_with("listen = ["))
        .map(|l| l.matches(":0\"").count())
        .sum::<usize>()
        .max(1);
    let mut addrs = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while addrs.len() < wanted {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(addr)) => addrs.push(addr),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "natterd did not start ({other:?}):\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }
    (child, addrs, log)
}

impl Daemon {
    /// natterd with [`BASE_CONFIG`].
    pub fn start() -> Daemon {
        Daemon::with_config(BASE_CONFIG)
    }

    /// natterd with this natter.toml; an `[admin]` table with a socket in a temp dir is added
    /// unless the text has one.
    pub fn with_config(toml: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("admin.sock");
        let mut toml = with_test_limits(toml);
        if !toml.contains("[admin]") {
            toml.push_str(&format!(
                "[admin]\nsocket = {:?}\n",
                socket.display().to_string()
            ));
        }
        Daemon::spawn(dir, socket, &toml)
    }

    /// natterd with `toml` in `dir`, expecting its admin socket at `socket`.
    pub fn spawn(dir: tempfile::TempDir, socket: PathBuf, toml: &str) -> Daemon {
        Daemon::spawn_with(dir, socket, toml, &[])
    }

    /// Like [`Daemon::spawn`], with these environment variables. natterd keeps its state
    /// (bans and mutes) in `state/` in the temp dir unless `env` says otherwise.
    pub fn spawn_with(
        dir: tempfile::TempDir,
        socket: PathBuf,
        toml: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let path = dir.path().join("natter.toml");
        std::fs::write(&path, toml).expect("write config");
        let mut all = vec![(
            "STATE_DIRECTORY".to_owned(),
            dir.path().join("state").display().to_string(),
        )];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (child, addrs, log) = launch(&path, &all);
        Daemon {
            child,
            addrs,
            socket,
            config: path,
            log,
            dir,
            env: all,
        }
    }

    /// Stops natterd with SIGTERM and starts it again on the same files (its listening
    /// ports may change).
    pub fn restart(&mut self) {
        self.signal(Signal::TERM);
        assert_eq!(self.wait_exit(), Some(0), "{}", self.log());
        let (child, addrs, log) = launch(&self.config, &self.env);
        (self.child, self.addrs, self.log) = (child, addrs, log);
    }

    /// Where natterd keeps bans and mutes.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// natterd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The temp dir holding the config and socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs natterctl against this daemon's socket.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let socket = self.socket.to_str().expect("utf-8 path");
        natterctl(&[&["--socket", socket], args].concat())
    }

    /// Sends `signal` to natterd.
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.child.id() as i32).expect("pid");
        kill_process(pid, signal).expect("kill");
    }

    /// Waits for natterd to exit by itself and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "natterd did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Everything natterd has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        self.wait_log_within(needle, TIMEOUT);
    }

    /// Waits up to `limit` until the log contains `needle`, for what natterd itself does only
    /// after a longer timeout.
    pub fn wait_log_within(&self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A raw connection that has read nothing yet.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Logs in each nickname in turn; everyone already in reads each later join line.
    pub fn room<const N: usize>(&self, nicks: [&str; N]) -> [Client; N] {
        let mut clients: Vec<Client> = Vec::new();
        for nick in nicks {
            let client = self.login(nick);
            let joined = format!("* {nick} joined");
            for earlier in &mut clients {
                assert_eq!(unstamp(&earlier.line()), joined);
            }
            clients.push(client);
        }
        match clients.try_into() {
            Ok(room) => room,
            Err(_) => unreachable!("one client per nickname"),
        }
    }

    /// A connection that read the hello, banner and prompt and is logged in as `nick`.
    pub fn login(&self, nick: &str) -> Client {
        self.login_on(self.connect(), nick)
    }

    /// Logs `c`, a new connection, in as `nick`.
    pub fn login_on(&self, mut c: Client, nick: &str) -> Client {
        c.expect_greeting();
        c.send(format!("{nick}\r\n"));
        let line = c.line();
        let welcome = unstamp(&line);
        assert!(
            welcome.starts_with(&format!("* welcome, {nick}! ")),
            "{welcome:?}"
        );
        let line = c.line();
        let room = unstamp(&line);
        assert!(room.starts_with("* you are in #"), "{room:?}");
        c
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- natterd log ---\n{}", self.log());
        }
    }
}

/// One chat connection.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect"))
    }

    /// Connects to `to` from the loopback address `source` (127.0.0.x or ::1).
    pub fn connect_from(source: std::net::IpAddr, to: SocketAddr) -> Client {
        let domain = socket2::Domain::for_address(to);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
        socket.connect_timeout(&to.into(), TIMEOUT).unwrap();
        Client::from_stream(TcpStream::from(socket))
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The socket itself, for a test that drives it by hand; unread input is dropped.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Everything up to and including the first `needle`.
    pub fn read_until(&mut self, needle: &[u8]) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return self.buf.drain(..at + needle.len()).collect();
            }
            assert!(
                self.fill(deadline, "a needle"),
                "closed before {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }

    /// Sends raw bytes; the server may hang up part way.
    pub fn send_ignoring_errors(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads up to and including the nickname prompt, whatever came before it.
    pub fn expect_greeting_tail(&mut self) {
        for _ in 0..100 {
            if self.line().contains("Choose a nickname (up to ") {
                return;
            }
        }
        panic!("no nickname prompt");
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
    }

    /// Sends `text` and CR LF.
    pub fn say(&mut self, text: &str) {
        self.send(format!("{text}\r\n"));
    }

    /// Half-closes: the server sees end of input.
    pub fn shutdown_write(&mut self) {
        self.stream.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Reads more bytes into the buffer; false at end of stream.
    fn fill(&mut self, deadline: Instant, what: &str) -> bool {
        let mut chunk = [0; 65536];
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
                Err(e) => panic!("read failed waiting for {what}: {e}"),
            }
        }
    }

    /// Exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        while self.buf.len() < n {
            assert!(self.fill(deadline, "bytes"), "closed before {n} bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// The next line, without its CR LF. Every line must end in CR LF.
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return String::from_utf8(line).expect("server output is UTF-8");
            }
            assert!(
                self.fill(deadline, "a line"),
                "connection closed; unfinished: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Asserts the next line is `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    /// Reads the hello bytes, the banner, any MOTD and the nickname prompt.
    pub fn expect_greeting(&mut self) {
        assert_eq!(self.bytes(HELLO.len()), HELLO);
        let banner = self.line();
        assert!(banner.starts_with("Welcome to "), "{banner:?}");
        for _ in 0..100 {
            if self.line().starts_with("Choose a nickname (up to ") {
                return;
            }
        }
        panic!("no nickname prompt");
    }

    /// Asserts the server closes the connection, with no more lines before that.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.fill(deadline, "the close") {}
        assert!(
            self.buf.is_empty(),
            "unexpected output before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }
}

/// `toml` with flood control and the per-address limits off unless it sets them (tests send
/// fast, from one address), and without room history unless it sets it, so that a user who
/// logs in late does not see earlier tests' lines.
pub fn with_test_limits(toml: &str) -> String {
    let toml = with_defaults(toml, "chat", &[("history", "0")]);
    with_defaults(
        &toml,
        "limits",
        &[
            ("flood_rate", "0"),
            ("max_clients_per_ip", "0"),
            ("connects_per_minute_per_ip", "0"),
            ("announces_per_minute_per_ip", "0"),
        ],
    )
}

/// `toml` with each of `keys` set in `[table]` unless it sets it already.
fn with_defaults(toml: &str, table: &str, keys: &[(&str, &str)]) -> String {
    let mut extra = String::new();
    for (key, value) in keys {
        if !toml.contains(&format!("{key} =")) {
            extra.push_str(&format!("{key} = {value}\n"));
        }
    }
    let header = format!("[{table}]\n");
    match toml.find(&header) {
        // At the end of the table, so the file's own lines keep their order.
        Some(at) => {
            let body = at + header.len();
            let end = toml[body..]
                .find("\n[")
                .map_or(toml.len(), |n| body + n + 1);
            let gap = if toml[..end].ends_with('\n') {
                ""
            } else {
                "\n"
            };
            format!("{}{gap}{extra}{}", &toml[..end], &toml[end..])
        }
        None => format!("{header}{extra}{toml}"),
    }
}

/// Runs natterd on `config` with its state in `state` until it exits by itself (as it does
/// when it refuses to start); returns what it printed.
pub fn natterd_once(config: &Path, state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_natterd"))
        .arg("--config")
        .arg(config)
        .env("STATE_DIRECTORY", state)
        .env_remove("RUST_LOG")
        .output()
        .expect("run natterd")
}

/// The resident memory of process `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Runs natterctl with `args`.
pub fn natterctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_natterctl"))
        .args(args)
        .output()
        .expect("run natterctl")
}

/// Text of a command's output stream.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Proves `to` got nothing from `from` before this point: lines from one sender arrive in
/// order, so if the next thing `to` sees is this private message, nothing came before it.
pub fn barrier(from: &mut Client, from_nick: &str, to: &mut Client, to_nick: &str) {
    from.say(&format!("@{to_nick} sync"));
    let line = format!("[{from_nick} -> {to_nick}] sync");
    to.expect(&line);
    from.expect(&line);
}

/// `line` without a leading `[HH:MM:SS] `, if it has one.
pub fn unstamp(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() >= 11 && b[0] == b'[' && b[3] == b':' && b[6] == b':' && &b[9..11] == b"] " {
        &line[11..]
    } else {
        line
    }
}
