//! Soak: 2,000 clients against one natterd for about a minute: talkers, silent readers,
//! flooders, clients that never read, clients that come and go, and garbage spewers.
//! Afterwards every well-behaved client must have received every talker's line, in order,
//! and natterd's RSS must have stayed under `RSS_BOUND_KB` throughout.
//!
//! Not part of the default run (it takes a few minutes). Run it with:
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture
//! ```

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use common::{BASE_CONFIG, Daemon};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

const READERS: usize = 1_650;
const TALKERS: usize = 50;
const FLOODERS: usize = 100;
const NEVER_READ: usize = 100;
const COME_AND_GO: usize = 50;
const GARBAGE: usize = 50;
/// How long the talkers talk.
const RUN: Duration = Duration::from_secs(45);
/// Each talker's pace: one line per this interval (well within flood control).
const TALK_EVERY: Duration = Duration::from_millis(1500);
/// natterd's resident memory must stay below this, in KiB.
const RSS_BOUND_KB: u64 = 256 * 1024;

type Lines = tokio::io::Lines<BufReader<OwnedReadHalf>>;

/// Connects and logs in as `nick`, reading up to the welcome line.
async fn login(addr: SocketAddr, nick: &str) -> (Lines, tokio::net::tcp::OwnedWriteHalf) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        let line = lines.next_line().await.expect("read").expect("open");
        if line.contains("Choose a nickname") {
            break;
        }
    }
    write
        .write_all(format!("{nick}\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        let line = lines.next_line().await.expect("read").expect("open");
        if line.starts_with("* welcome, ") {
            return (lines, write);
        }
        assert!(!line.starts_with('!'), "{nick}: {line}");
    }
}

/// Reads until "<talkerN> end" has come from every talker; checks that each talker's
/// `lines_each` lines arrive complete and in order. Returns lines checked.
async fn read_all(mut lines: Lines, lines_each: Arc<AtomicU64>) -> u64 {
    let mut next: HashMap<usize, u64> = HashMap::new();
    let mut ended = 0;
    let mut checked = 0;
    while ended < TALKERS {
        let line = lines
            .next_line()
            .await
            .expect("read")
            .expect("natterd closed a reader");
        let Some(rest) = line.strip_prefix("<talker") else {
            assert!(!line.starts_with('!'), "a reader was told: {line}");
            continue;
        };
        let (who, text) = rest.split_once("> ").expect("talker line");
        let who: usize = who.parse().unwrap();
        let expected = next.entry(who).or_insert(0);
        if text == "end" {
            assert_eq!(
                *expected,
                lines_each.load(Relaxed),
                "talker{who} lines missing"
            );
            ended += 1;
            continue;
        }
        let seq: u64 = text.parse().unwrap();
        assert_eq!(
            seq, *expected,
            "talker{who}: got {seq}, expected {}",
            *expected
        );
        *expected = seq + 1;
        checked += 1;
    }
    checked
}

#[test]
#[ignore = "takes minutes; run with --ignored"]
fn two_thousand_clients_misbehaving() {
    // Telnet negotiation off: these clients read lines as UTF-8 text.
    let d = Daemon::with_config(&format!(
        "{}[limits]\nflood_rate = 2\nflood_burst = 10\nwrite_timeout = 20\n",
        BASE_CONFIG.replace("[chat]", "telnet_binary = false\n[chat]")
    ));
    let addr = d.addr();
    let pid = d.pid();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let peak_rss = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    runtime.block_on(async {
        let peak = peak_rss.clone();
        let sampling = stop.clone();
        tokio::spawn(async move {
            while !sampling.load(Relaxed) {
                peak.fetch_max(common::rss_kib(pid).unwrap_or(0), Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        // Everyone who must hear every line logs in first.
        let per_talker = Arc::new(AtomicU64::new(u64::MAX));
        let mut readers = Vec::new();
        for i in 0..READERS {
            let (lines, write) = login(addr, &format!("reader{i}")).await;
            let done = per_talker.clone();
            readers.push(tokio::spawn(async move {
                let _keep = write;
                read_all(lines, done).await
            }));
        }
        println!("{READERS} readers in after {:?}", started.elapsed());
        let mut never = Vec::new();
        for i in 0..NEVER_READ {
            never.push(login(addr, &format!("deaf{i}")).await);
        }
        let mut others = Vec::new();
        for i in 0..FLOODERS {
            let (mut lines, mut write) = login(addr, &format!("flood{i}")).await;
            let stop = stop.clone();
            others.push(tokio::spawn(async move {
                // Private messages to themselves: the flood costs natterd, not the room.
                let drain =
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    let burst: String = (0..50)
                        .map(|k| format!("@flood{i} {}\r\n", n + k))
                        .collect();
                    if write.write_all(burst.as_bytes()).await.is_err() {
                        break;
                    }
                    n += 50;
                }
                drain.abort();
            }));
        }
        for i in 0..COME_AND_GO {
            let stop = stop.clone();
            others.push(tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(Relaxed) {
                    let (lines, mut write) = login(addr, &format!("visitor{i}")).await;
                    let _ = write.write_all(b"/ls\r\nhello\r\n").await;
                    tokio::time::sleep(Duration::from_millis(
                        200 + (i as u64 * 37 + round * 101) % 2000,
                    ))
                    .await;
                    if round.is_multiple_of(2) {
                        let _ = write.write_all(b"/quit\r\n").await;
                    }
                    drop((lines, write));
                    round += 1;
                    // Wait for natterd to free the nickname.
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
            }));
        }
        for i in 0..GARBAGE {
            let stop = stop.clone();
            others.push(tokio::spawn(async move {
                let mut state = i as u32 + 7;
                let mut junk = vec![0u8; 16 * 1024];
                while !stop.load(Relaxed) {
                    let Ok(mut s) = TcpStream::connect(addr).await else {
                        continue;
                    };
                    for _ in 0..64 {
                        for b in junk.iter_mut() {
                            state ^= state << 13;
                            state ^= state >> 17;
                            state ^= state << 5;
                            *b = state as u8;
                        }
                        if s.write_all(&junk).await.is_err() {
                            break;
                        }
                    }
                }
            }));
        }
        println!(
            "all {} clients in after {:?}",
            READERS + NEVER_READ + FLOODERS + COME_AND_GO + GARBAGE + TALKERS,
            started.elapsed()
        );
        // Talkers speak at a steady pace, then say "end".
        let mut talkers = Vec::new();
        let lines_each = (RUN.as_millis() / TALK_EVERY.as_millis()) as u64;
        per_talker.store(lines_each, Relaxed);
        for i in 0..TALKERS {
            let (mut lines, mut write) = login(addr, &format!("talker{i}")).await;
            talkers.push(tokio::spawn(async move {
                let drain =
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                for seq in 0..lines_each {
                    write
                        .write_all(format!("{seq}\r\n").as_bytes())
                        .await
                        .unwrap();
                    tokio::time::sleep(TALK_EVERY).await;
                }
                write.write_all(b"end\r\n").await.unwrap();
                drain.abort();
                write
            }));
        }
        let mut keep = Vec::new();
        for t in talkers {
            keep.push(t.await.unwrap());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut checked = 0;
        for r in readers {
            checked += tokio::time::timeout_at(deadline, r)
                .await
                .expect("a reader never finished")
                .unwrap();
        }
        stop.store(true, Relaxed);
        for o in others {
            o.abort();
        }
        let expected = READERS as u64 * TALKERS as u64 * lines_each;
        assert_eq!(checked, expected);
        println!(
            "{READERS} readers each got all {} talker lines in order ({checked} checked) in {:?}",
            TALKERS as u64 * lines_each,
            started.elapsed()
        );
        drop(never);
    });
    let stats = String::from_utf8_lossy(&d.ctl(&["stats"]).stdout).into_owned();
    println!("{stats}");
    let peak = peak_rss.load(Relaxed);
    println!("natterd peak RSS: {} KiB (bound {RSS_BOUND_KB} KiB)", peak);
    assert!(peak > 0 && peak < RSS_BOUND_KB);
}
