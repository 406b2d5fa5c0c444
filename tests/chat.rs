//! The conversation, end to end: real natterd, raw TCP clients.

mod common;

use common::{Daemon, barrier};

#[test]
fn greeting_motd_and_welcome() {
    let d = Daemon::with_config(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nname = \"den\"\nmotd = \"be kind\\nno tricks\"\n[chat]\ntimestamps = false\n",
    );
    let mut c = d.connect();
    assert_eq!(c.bytes(5), common::HELLO);
    c.expect(&format!(
        "Welcome to den (natter {})",
        env!("CARGO_PKG_VERSION")
    ));
    c.expect("be kind");
    c.expect("no tricks");
    c.expect("Choose a nickname (up to 16 characters):");
    c.say("alice");
    c.expect("* welcome, alice! 1 user online; /h shows help");
    c.expect("* you are in #lobby (1 here)");
    let mut b = d.login("bob");
    c.expect("* bob joined");
    barrier(&mut b, "bob", &mut c, "alice");
}

#[test]
fn nickname_rules() {
    let d = Daemon::start();
    let _alice = d.login("alice");
    let mut c = d.connect();
    c.expect_greeting();
    let prompt = "Choose a nickname (up to 16 characters):";
    // Empty and blank lines get no answer (the next line seen is the answer to the next try).
    c.say("");
    c.say("   ");
    c.send("\r\r\r");
    c.say("seventeen_chars_x");
    c.expect("! nickname too long (max 16 characters): seventeen_chars_x");
    c.expect(prompt);
    c.say("two words");
    c.expect("! nickname may not contain spaces: two words");
    c.expect(prompt);
    c.say("@bob");
    c.expect("! nickname may not start with @ or /: @bob");
    c.expect(prompt);
    c.say("/bob");
    c.expect("! nickname may not start with @ or /: /bob");
    c.expect(prompt);
    c.say("ALICE");
    c.expect("! nickname already taken: ALICE");
    c.expect(prompt);
    // Sixteen characters, not bytes.
    c.say("ööööööööööööööö本");
    c.expect("* welcome, ööööööööööööööö本! 2 users online; /h shows help");
}

#[test]
fn nicknames_are_sanitized_before_anyone_sees_them() {
    let d = Daemon::start();
    let mut alice = d.login("alice");
    let mut c = d.connect();
    c.expect_greeting();
    c.send(b"\x1b[31mev\xe2\x80\xaeil\x1b]0;x\x07\r\n");
    c.expect("* welcome, evil! 2 users online; /h shows help");
    c.expect("* you are in #lobby (2 here)");
    alice.expect("* evil joined");
}

#[test]
fn group_messages_reach_everyone_else_once() {
    let d = Daemon::start();
    let [mut a, mut b, mut c] = d.room(["alice", "bob", "carol"]);
    a.say("hello all");
    a.say("   ");
    a.say("");
    a.say("second");
    for other in [&mut b, &mut c] {
        other.expect("<alice> hello all");
        other.expect("<alice> second");
    }
    // Not echoed: alice's next line is the answer to her own /ls.
    a.say("/ls");
    a.expect("* 3 online in #lobby: alice, bob, carol");
}

#[test]
fn private_messages() {
    let d = Daemon::start();
    let [mut a, mut b, mut c] = d.room(["alice", "Bob", "carol"]);
    a.say("@bob psst, hello");
    b.expect("[alice -> Bob] psst, hello");
    a.expect("[alice -> Bob] psst, hello");
    a.say("@bob");
    a.expect("! usage: @nick message");
    a.say("@nobody hi");
    a.expect("! no such user: nobody");
    a.say("@alice note to self");
    a.expect("[alice -> alice] note to self");
    // carol saw none of it.
    barrier(&mut a, "alice", &mut c, "carol");
}

#[test]
fn list_help_and_unknown_commands() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    b.say("/i");
    b.line();
    a.say("/ls");
    a.expect("* 2 online in #lobby: alice, bob (ignoring)");
    a.say("/h");
    for line in natter::command::HELP {
        a.expect(line);
    }
    a.say("/help");
    a.expect(natter::command::HELP[0]);
    for _ in 1..natter::command::HELP.len() {
        a.line();
    }
    a.say("/foo bar");
    a.expect("! unknown command /foo (/h for help)");
    // bob saw none of it.
    barrier(&mut a, "alice", &mut b, "bob");
}

#[test]
fn ignore_mode() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    b.say("/i");
    b.expect("* ignore mode on: you no longer receive group messages (/i to leave it)");
    a.say("not for bob");
    b.say("from bob");
    b.expect("! you are in ignore mode (/i to leave it)");
    // Private messages both ways and system lines still arrive.
    a.say("@bob direct");
    b.expect("[alice -> bob] direct");
    a.expect("[alice -> bob] direct");
    b.say("@alice back");
    a.expect("[bob -> alice] back");
    b.expect("[bob -> alice] back");
    let carol = d.login("carol");
    a.expect("* carol joined");
    b.expect("* carol joined");
    drop(carol);
    a.expect("* carol left");
    b.expect("* carol left");
    b.say("/i");
    b.expect("* ignore mode off: you receive group messages again");
    a.say("for bob again");
    b.expect("<alice> for bob again");
}

#[test]
fn quit_says_goodbye_and_closes() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    b.say("/quit");
    b.expect("* bye, bob");
    b.expect_closed();
    a.expect("* bob left");
    // /quit also works at the nickname prompt.
    let mut c = d.connect();
    c.expect_greeting();
    c.say("/quit");
    c.expect_closed();
    d.wait_log("reason=\"quit\"");
}

#[test]
fn leaving_for_any_reason_is_announced() {
    let d = Daemon::start();
    let mut a = d.login("alice");
    let b = d.login("bob");
    a.expect("* bob joined");
    drop(b);
    a.expect("* bob left");
    // A disconnect in the middle of a line delivers that line first.
    let mut c = d.login("carol");
    a.expect("* carol joined");
    c.send("half a li");
    c.send("ne");
    c.shutdown_write();
    a.expect("<carol> half a line");
    a.expect("* carol left");
    // A connection that never logged in leaves no trace.
    let mut e = d.connect();
    e.expect_greeting();
    drop(e);
    a.say("/ls");
    a.expect("* 1 online in #lobby: alice");
}

#[test]
fn lines_from_one_sender_arrive_in_order() {
    let d = Daemon::start();
    let [mut a, mut b, mut c] = d.room(["alice", "bob", "carol"]);
    let burst: String = (0..300).map(|i| format!("message {i}\n")).collect();
    a.send(burst);
    for i in 0..300 {
        b.expect(&format!("<alice> message {i}"));
        c.expect(&format!("<alice> message {i}"));
    }
}

#[test]
fn ten_users_at_once() {
    let d = Daemon::start();
    let nicks: Vec<String> = (0..10).map(|i| format!("user{i}")).collect();
    let mut clients = d.room(std::array::from_fn::<_, 10, _>(|i| nicks[i].as_str()));
    std::thread::scope(|s| {
        for (i, c) in clients.iter_mut().enumerate() {
            let nicks = &nicks;
            s.spawn(move || {
                for n in 0..20 {
                    c.say(&format!("{n} from {}", nicks[i]));
                }
                // 9 senders × 20 lines, each sender's lines in order.
                let mut next = vec![0; nicks.len()];
                for _ in 0..9 * 20 {
                    let line = c.line();
                    let (who, text) = line[1..].split_once("> ").expect("a group line");
                    let from = nicks.iter().position(|n| n == who).expect("known sender");
                    assert_ne!(from, i, "echoed to sender");
                    assert_eq!(text, format!("{} from {who}", next[from]));
                    next[from] += 1;
                }
            });
        }
    });
}

#[test]
fn timestamps_go_on_chat_and_system_lines_only() {
    let d = Daemon::with_config("[server]\nlisten = [\"127.0.0.1:0\"]\n");
    let mut a = d.connect();
    a.expect_greeting();
    a.say("alice");
    let stamp = |line: &str| -> String {
        let rest = common::unstamp(line);
        assert_eq!(rest.len() + 11, line.len(), "no timestamp on {line:?}");
        assert!(line[1..9].bytes().all(|c| c.is_ascii_digit() || c == b':'));
        rest.to_owned()
    };
    assert!(stamp(&a.line()).starts_with("* welcome, alice!"));
    assert_eq!(stamp(&a.line()), "* you are in #lobby (1 here)");
    let mut b = d.login("bob");
    assert_eq!(stamp(&a.line()), "* bob joined");
    a.say("hi");
    assert_eq!(stamp(&b.line()), "<alice> hi");
    a.say("@bob psst");
    assert_eq!(stamp(&b.line()), "[alice -> bob] psst");
    assert_eq!(stamp(&a.line()), "[alice -> bob] psst");
    a.say("/nope");
    a.expect("! unknown command /nope (/h for help)");
    a.say("/h");
    a.expect(natter::command::HELP[0]);
}

#[test]
fn long_lines_are_refused_whole() {
    let d = Daemon::start();
    let [mut a, mut b] = d.room(["alice", "bob"]);
    a.say(&"x".repeat(512));
    b.expect(&format!("<alice> {}", "x".repeat(512)));
    a.say(&"y".repeat(513));
    a.expect("! line too long (max 512 bytes)");
    a.say("ok");
    b.expect("<alice> ok");
}
