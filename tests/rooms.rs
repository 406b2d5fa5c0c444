//! Rooms and the chat commands that come with them (`/join`, `/rooms`, `/topic`, `/nick`,
//! `/me`, `/away`, `/ignore`), room history, and natterctl's room commands, through real
//! TCP clients and the real natterctl.

mod common;

use common::admin::{Watch, ctl, ctl_fails, ctl_json};
use common::{BASE_CONFIG, Client, Daemon, barrier};

/// A config with history on and a topic on the lobby.
fn with_rooms(extra: &str) -> String {
    format!(
        "{BASE_CONFIG}history = 3\n{extra}[[chat.rooms]]\nname = \"#lobby\"\ntopic = \"be kind\"\n"
    )
}

/// Logs `nick` in by hand, reading the welcome, room and topic lines.
fn enter(d: &Daemon, nick: &str, here: usize) -> Client {
    let mut c = d.connect();
    c.expect_greeting();
    c.say(nick);
    let line = c.line();
    assert!(line.starts_with(&format!("* welcome, {nick}! ")), "{line}");
    c.expect(&format!("* you are in #lobby ({here} here)"));
    c.expect("* topic: be kind");
    c
}

/// Moves `c` to `room` (`#name`), which has `here` users once it is in.
fn join(c: &mut Client, room: &str, here: usize) {
    c.say(&format!("/join {room}"));
    c.expect(&format!("* you are in {room} ({here} here)"));
}

#[test]
fn login_shows_the_room_its_topic_and_history() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    for text in ["one", "two", "three", "four"] {
        alice.say(text);
    }
    alice.say("/me waves");
    // Answered only after the lines before it were relayed.
    alice.say("/ls");
    alice.expect("* 1 online in #lobby: alice");
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    alice.say("@bob private");
    // The last three group and /me lines, as first shown; never joins or private messages.
    for line in ["<alice> three", "<alice> four", "** alice waves"] {
        bob.expect(line);
    }
    bob.expect("[alice -> bob] private");
    alice.expect("[alice -> bob] private");
    // /me is never echoed, and starts with two stars.
    bob.say("/me nods");
    alice.expect("** bob nods");
    bob.say("/me");
    bob.expect("! usage: /me action");
    barrier(&mut alice, "alice", &mut bob, "bob");
}

#[test]
fn rooms_are_apart_and_private_messages_cross_them() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    let mut carol = enter(&d, "carol", 3);
    alice.expect("* carol joined");
    bob.expect("* carol joined");

    join(&mut alice, "#rust", 1);
    bob.expect("* alice left for #rust");
    carol.expect("* alice left for #rust");
    bob.say("/j RUST");
    bob.expect("* you are in #rust (2 here)");
    alice.expect("* bob joined");
    carol.expect("* bob left for #rust");

    alice.say("in rust");
    bob.expect("<alice> in rust");
    alice.say("/me hums");
    bob.expect("** alice hums");
    carol.say("in lobby");
    carol.say("@alice across rooms");
    alice.expect("[carol -> alice] across rooms");
    carol.expect("[carol -> alice] across rooms");
    // Nothing from #rust reached carol, nothing from the lobby reached alice or bob.
    barrier(&mut alice, "alice", &mut carol, "carol");
    barrier(&mut carol, "carol", &mut bob, "bob");

    alice.say("/ls");
    alice.expect("* 2 online in #rust: alice, bob");
    carol.say("/ls");
    carol.expect("* 1 online in #lobby: carol");
    carol.say("/rooms");
    carol.expect("* 2 rooms:");
    carol.expect("* #rust (2)");
    carol.expect("* #lobby (1): be kind");

    alice.say("/join #rust");
    alice.expect("! you are already in #rust");
    alice.say("/join #a b");
    alice.expect("! bad room name: no spaces allowed");
    alice.say("/join #");
    alice.expect("! bad room name: empty");
    alice.say(&format!("/join #{}", "x".repeat(25)));
    alice.expect("! bad room name: longer than 24 characters");
    alice.say("/join #\u{200b}");
    alice.expect("! bad room name: empty");
    alice.say("/join");
    alice.expect("! usage: /join #room");

    // The user room goes once its last user leaves.
    join(&mut alice, "#lobby", 2);
    alice.expect("* topic: be kind");
    bob.expect("* alice left for #lobby");
    carol.expect("* alice joined");
    bob.say("/quit");
    bob.expect("* bye, bob");
    carol.say("/rooms");
    carol.expect("* 1 room:");
    carol.expect("* #lobby (2): be kind");
}

#[test]
fn room_creation_is_bounded() {
    let d = Daemon::with_config(&with_rooms("max_rooms = 1\n"));
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    join(&mut bob, "#mine", 1);
    alice.expect("* bob left for #mine");
    alice.say("/join #another");
    alice.expect("! too many rooms; join one that exists (/rooms)");
    // A user who makes rooms fast is paced: five, then one every twelve seconds.
    bob.say("/join #lobby");
    bob.expect("* you are in #lobby (2 here)");
    bob.expect("* topic: be kind");
    alice.expect("* bob joined");
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    for i in 1..=5 {
        join(&mut alice, &format!("#r{i}"), 1);
    }
    alice.say("/join #r6");
    let line = alice.line();
    assert!(
        line.starts_with("! too many new rooms; try again in "),
        "{line}"
    );
    let d = Daemon::with_config(&with_rooms("user_rooms = false\n"));
    let mut alice = enter(&d, "alice", 1);
    alice.say("/join #new");
    alice.expect("! no such room: #new");
}

#[test]
fn topics() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    alice.say("/topic");
    alice.expect("* topic of #lobby: be kind");
    alice.say("/topic mine now");
    alice.expect("! only operators can change the topic of #lobby");
    join(&mut alice, "#rust", 1);
    bob.expect("* alice left for #rust");
    alice.say("/topic");
    alice.expect("* #rust has no topic");
    join(&mut bob, "#rust", 2);
    alice.expect("* bob joined");
    // Cleaned like chat text: no escape sequence reaches anyone.
    alice.send(b"/topic \x1b[2Jrust \x1b]0;pwned\x07talk\r\n");
    alice.expect("* alice set the topic: rust talk");
    bob.expect("* alice set the topic: rust talk");
    bob.say("/topic");
    bob.expect("* topic of #rust: rust talk");
    alice.say(&format!("/topic {}", "t".repeat(201)));
    alice.expect("! topic too long (max 200 bytes)");
    bob.say("/rooms");
    bob.expect("* 2 rooms:");
    bob.expect("* #rust (2): rust talk");
    bob.expect("* #lobby (0): be kind");

    // Operators set any room's topic, and clear it.
    let out = ctl(&d, &["topic", "rust", "operators", "were", "here"]);
    assert_eq!(out, "topic of #rust set: operators were here\n");
    alice.expect("* the operators set the topic: operators were here");
    bob.expect("* the operators set the topic: operators were here");
    // A topic from natterctl is cleaned too: it cannot start a fake line.
    ctl(&d, &["topic", "rust", "a\r\n* fake\x1b[2J\u{202e}"]);
    alice.expect("* the operators set the topic: a* fake");
    bob.expect("* the operators set the topic: a* fake");
    ctl(&d, &["topic", "#RUST"]);
    alice.expect("* the operators cleared the topic");
    let (_, err) = ctl_fails(&d, &["topic", "#nowhere", "x"]);
    assert!(err.contains("no such room: #nowhere"), "{err}");
    let (_, err) = ctl_fails(&d, &["topic", "#a\u{1b}b", "x"]);
    assert!(err.contains("bad room name"), "{err}");
    let long = "t".repeat(201);
    let (_, err) = ctl_fails(&d, &["topic", "#rust", &long]);
    assert!(err.contains("topic too long"), "{err}");
}

#[test]
fn nickname_changes() {
    let d = Daemon::start();
    let [mut alice, mut bob, mut carol] = d.room(["alice", "bob", "carol"]);
    carol.say("/join #elsewhere");
    carol.expect("* you are in #elsewhere (1 here)");
    alice.expect("* carol left for #elsewhere");
    bob.expect("* carol left for #elsewhere");

    alice.say("/nick alicia");
    alice.expect("* alice is now known as alicia");
    bob.expect("* alice is now known as alicia");
    bob.say("@alicia hi");
    alice.expect("[bob -> alicia] hi");
    bob.expect("[bob -> alicia] hi");
    bob.say("@alice hi");
    bob.expect("! no such user: alice");
    // The old name is free again.
    let mut again = d.login("alice");
    alice.expect("* alice joined");
    bob.expect("* alice joined");
    again.say("/quit");
    again.expect("* bye, alice");
    alice.expect("* alice left");
    bob.expect("* alice left");

    // Every rule of the prompt, with its error.
    for (wanted, error) in [
        ("bob", "nickname already taken: bob"),
        ("BOB", "nickname already taken: BOB"),
        ("admin", "nickname reserved: admin"),
        ("two words", "nickname may not contain spaces: two words"),
        ("@x", "nickname may not start with @ or /: @x"),
        (
            "seventeen_chars_x",
            "nickname too long (max 16 characters): seventeen_chars_x",
        ),
    ] {
        alice.say(&format!("/nick {wanted}"));
        alice.expect(&format!("! {error}"));
    }
    alice.say("/nick");
    alice.expect("! usage: /nick name");
    // Three changes a minute (one is spent above).
    alice.say("/nick al");
    alice.expect("* alicia is now known as al");
    bob.expect("* alicia is now known as al");
    alice.say("/nick Al");
    alice.expect("* al is now known as Al");
    bob.expect("* al is now known as Al");
    alice.say("/nick ally");
    let line = alice.line();
    assert!(
        line.starts_with("! too many nickname changes; try again in "),
        "{line}"
    );
    // carol, in another room, saw none of it.
    barrier(&mut bob, "bob", &mut carol, "carol");
}

#[test]
fn mutes_and_bans_follow_the_person_across_nickname_changes() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    bob.say("/nick bobby");
    bob.expect("* bob is now known as bobby");
    alice.expect("* bob is now known as bobby");
    // A mute on the name given up still holds, and a muted user cannot change names.
    ctl(&d, &["mute", "bob"]);
    bob.say("hello");
    bob.expect("! you are muted");
    bob.say("/nick robert");
    bob.expect("! you are muted");
    bob.say("/me sneaks");
    bob.expect("! you are muted");
    barrier(&mut alice, "alice", &mut bob, "bobby");
    ctl(&d, &["unmute", "bob"]);
    // A banned nickname cannot be taken with /nick either.
    ctl(&d, &["ban", "mallory"]);
    alice.say("/nick mallory");
    alice.expect("! nickname banned: mallory");
    // A ban on the old name finds the person.
    let reply = ctl_json(&d, &["ban", "bob"]);
    assert_eq!(reply["kicked"][0], "bobby");
    bob.expect("! you are banned");
    bob.expect_closed();
    alice.expect("* bobby was banned");
}

#[test]
fn nickname_races_have_one_winner() {
    let d = Daemon::start();
    for round in 0..10 {
        let a_nick = format!("a{round}");
        let b_nick = format!("b{round}");
        let [mut a, mut b] = d.room([a_nick.as_str(), b_nick.as_str()]);
        // Both ask at once; the hub decides under its lock.
        a.send("/nick prize\r\n");
        b.send("/nick prize\r\n");
        let (a_first, b_first) = (a.line(), b.line());
        let renamed = |nick: &str| format!("* {nick} is now known as prize");
        let a_won = a_first == renamed(&a_nick) || b_first == renamed(&a_nick);
        let b_won = a_first == renamed(&b_nick) || b_first == renamed(&b_nick);
        assert!(a_won != b_won, "round {round}: {a_first:?} / {b_first:?}");
        let (winner, loser, loser_first, loser_nick) = if a_won {
            (&a_nick, &mut b, b_first, &b_nick)
        } else {
            (&b_nick, &mut a, a_first, &a_nick)
        };
        // The loser sees the winner's change and its own refusal, in either order.
        let taken = "! nickname already taken: prize".to_owned();
        let loser_second = loser.line();
        let mut seen = [loser_first, loser_second];
        seen.sort();
        let mut want = [taken, renamed(winner)];
        want.sort();
        assert_eq!(seen, want, "round {round}");
        loser.say("/quit");
        until(loser, &format!("* bye, {loser_nick}"));
        let winner = if a_won { &mut a } else { &mut b };
        winner.say("/quit");
        until(winner, "* bye, prize");
    }
}

/// Reads lines until `want`.
fn until(c: &mut Client, want: &str) {
    for _ in 0..10 {
        if c.line() == want {
            return;
        }
    }
    panic!("never saw {want:?}");
}

#[test]
fn away_messages() {
    let d = Daemon::start();
    let [mut alice, mut bob] = d.room(["alice", "bob"]);
    bob.say("/away lunch");
    bob.expect("* you are away: lunch");
    alice.say("@bob hi");
    alice.expect("[alice -> bob] hi");
    alice.expect("* bob is away: lunch");
    bob.expect("[alice -> bob] hi");
    alice.say("/ls");
    alice.expect("* 2 online in #lobby: alice, bob (away)");
    bob.say(&format!("/away {}", "z".repeat(201)));
    bob.expect("! away message too long (max 200 bytes)");
    bob.send(b"/away \x1b[31mgone\x07 \xe2\x80\xaefishing\r\n");
    bob.expect("* you are away: gone fishing");
    alice.say("@bob hi");
    alice.expect("[alice -> bob] hi");
    alice.expect("* bob is away: gone fishing");
    bob.expect("[alice -> bob] hi");
    bob.say("/away");
    bob.expect("* you are back");
    alice.say("@bob back?");
    alice.expect("[alice -> bob] back?");
    bob.expect("[alice -> bob] back?");
    barrier(&mut bob, "bob", &mut alice, "alice");
}

#[test]
fn ignoring_people() {
    let d = Daemon::start();
    let [mut alice, mut bob, mut carol] = d.room(["alice", "bob", "carol"]);
    alice.say("/ignore");
    alice.expect("* you are ignoring nobody");
    alice.say("/ignore BOB");
    alice.expect("* you are ignoring bob");
    alice.say("/ignore alice");
    alice.expect("! you cannot ignore yourself");
    alice.say("/ignore zed");
    alice.expect("! no such user: zed");
    bob.say("hidden");
    carol.expect("<bob> hidden");
    bob.say("/me hides");
    carol.expect("** bob hides");
    // A private message is hidden too; the sender is not told.
    bob.say("@alice psst");
    bob.expect("[bob -> alice] psst");
    // Across a nickname change.
    bob.say("/nick bobby");
    bob.expect("* bob is now known as bobby");
    alice.expect("* bob is now known as bobby");
    carol.expect("* bob is now known as bobby");
    bob.say("still hidden");
    carol.expect("<bobby> still hidden");
    carol.say("seen");
    alice.expect("<carol> seen");
    alice.say("/ignore");
    alice.expect("* you are ignoring: bobby");

    alice.say("/ls");
    alice.expect("* 3 online in #lobby: alice, bobby, carol");
    alice.say("/unignore bob");
    alice.expect("! you are not ignoring bob");
    alice.say("/unignore bobby");
    alice.expect("* you are no longer ignoring bobby");
    alice.say("/ignore");
    alice.expect("* you are ignoring nobody");
    bob.say("visible");
    alice.expect("<bobby> visible");
    carol.expect("<bobby> visible");
    // /i alone still flips ignore mode.
    alice.say("/i");
    let line = alice.line();
    assert!(line.starts_with("* ignore mode on"), "{line}");
}

#[test]
fn history_hides_the_people_you_ignore() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    alice.say("/ignore bob");
    alice.expect("* you are ignoring bob");
    bob.say("from bob");
    alice.say("from alice");
    bob.expect("<alice> from alice");
    join(&mut alice, "#side", 1);
    bob.expect("* alice left for #side");
    alice.say("/join #lobby");
    alice.expect("* you are in #lobby (2 here)");
    alice.expect("* topic: be kind");
    alice.expect("<alice> from alice");
    // Had bob's line been replayed, it would come before this answer.
    alice.say("/ls");
    alice.expect("* 2 online in #lobby: alice, bob");
    bob.expect("* alice joined");
}

#[test]
fn history_is_bounded_per_room_and_purged_by_bans() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    let mut mallory = Client::connect_from([127, 0, 0, 2].into(), d.addr());
    mallory.expect_greeting();
    mallory.say("mallory");
    mallory.line();
    mallory.expect("* you are in #lobby (2 here)");
    mallory.expect("* topic: be kind");
    alice.expect("* mallory joined");
    alice.say("a1");
    mallory.say("m1");
    alice.say("a2");
    mallory.expect("<alice> a1");
    mallory.expect("<alice> a2");
    alice.expect("<mallory> m1");
    join(&mut alice, "#side", 1);
    alice.say("only in side");
    alice.say("/ls");
    alice.expect("* 1 online in #side: alice");
    // Banning the address takes mallory's lines out of history.
    let reply = ctl_json(&d, &["ban", "127.0.0.2"]);
    assert_eq!(reply["kicked"][0], "mallory");
    let mut bob = enter(&d, "bob", 1);
    bob.expect("<alice> a1");
    bob.expect("<alice> a2");
    bob.say("/join #side");
    bob.expect("* you are in #side (2 here)");
    bob.expect("<alice> only in side");
    alice.expect("* bob joined");
    barrier(&mut alice, "alice", &mut bob, "bob");

    // history = 0 keeps nothing.
    let d = Daemon::with_config(&format!("{BASE_CONFIG}history = 0\n"));
    let [mut alice] = d.room(["alice"]);
    alice.say("gone");
    alice.say("/ls");
    alice.expect("* 1 online in #lobby: alice");
    let mut bob = d.login("bob");
    alice.expect("* bob joined");
    barrier(&mut alice, "alice", &mut bob, "bob");
}

#[test]
fn help_lists_every_command() {
    let d = Daemon::start();
    let [mut alice] = d.room(["alice"]);
    alice.say("/h");
    let help: Vec<String> = (0..natter::command::HELP.len())
        .map(|_| alice.line())
        .collect();
    for command in [
        "/me",
        "/ls",
        "/join",
        "/rooms",
        "/topic",
        "/nick",
        "/away",
        "/ignore",
        "/unignore",
        "/i",
        "/report",
        "/quit",
    ] {
        assert!(
            help.iter()
                .any(|l| l.contains(&format!("{command} ")) || l.contains(&format!("{command},"))),
            "{command} missing from {help:#?}"
        );
    }
}

#[test]
fn operators_see_and_reach_rooms() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut watch = Watch::start(&d, true);
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    join(&mut bob, "#Rust", 1);
    alice.expect("* bob left for #Rust");
    let created = watch.event("room_created");
    assert_eq!(
        (&created["room"], &created["by"]),
        (&"#Rust".into(), &"bob".into())
    );

    let rooms = ctl_json(&d, &["rooms"]);
    let rooms = rooms["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0]["name"], "#lobby");
    assert_eq!(rooms[0]["topic"], "be kind");
    assert_eq!(rooms[0]["kind"], "config");
    assert_eq!(rooms[1]["kind"], "user");
    let table = ctl(&d, &["rooms"]);
    assert!(table.starts_with("ROOM"), "{table}");
    assert!(table.contains("#Rust   1      user"), "{table}");

    let list = ctl_json(&d, &["list", "--room", "rust"]);
    let conns = list["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(
        (&conns[0]["nick"], &conns[0]["room"]),
        (&"bob".into(), &"#Rust".into())
    );
    let table = ctl(&d, &["list"]);
    assert!(table.lines().next().unwrap().contains("ROOM"), "{table}");
    let (_, err) = ctl_fails(&d, &["list", "--room", "#a b"]);
    assert!(err.contains("bad room name"), "{err}");

    let out = ctl(&d, &["wall", "--room", "#rust", "rust", "only"]);
    assert_eq!(out, "sent to 1 user(s)\n");
    bob.expect("* [server] rust only");
    let (_, err) = ctl_fails(&d, &["wall", "--room", "#gone", "x"]);
    assert!(err.contains("no such room: #gone"), "{err}");
    barrier(&mut bob, "bob", &mut alice, "alice");

    ctl(&d, &["topic", "rust", "crabs"]);
    bob.expect("* the operators set the topic: crabs");
    let topic = watch.event("topic");
    assert_eq!(
        (&topic["room"], &topic["by"]),
        (&"#Rust".into(), &"operators".into())
    );
    bob.say("/nick robert");
    bob.expect("* bob is now known as robert");
    let nick = watch.event("nick");
    assert_eq!(
        (&nick["old"], &nick["new"]),
        (&"bob".into(), &"robert".into())
    );
    let stats = ctl_json(&d, &["stats"]);
    assert_eq!(stats["rooms"], 2);
    bob.say("/quit");
    let removed = watch.event("room_removed");
    assert_eq!(removed["room"], "#Rust");
    assert_eq!(ctl_json(&d, &["stats"])["rooms"], 1);
}

#[test]
fn a_reload_adds_rooms_and_topics_without_moving_anyone() {
    let d = Daemon::with_config(&with_rooms(""));
    let mut alice = enter(&d, "alice", 1);
    let mut bob = enter(&d, "bob", 2);
    alice.expect("* bob joined");
    join(&mut bob, "#side", 1);
    alice.expect("* bob left for #side");
    let config = std::fs::read_to_string(&d.config).unwrap();
    let changed = config.replace("be kind", "be very kind")
        + "[[chat.rooms]]\nname = \"#news\"\ntopic = \"fresh\"\n";
    std::fs::write(&d.config, changed).unwrap();
    ctl(&d, &["reload"]);
    alice.expect("* the operators set the topic: be very kind");
    bob.say("/rooms");
    bob.expect("* 3 rooms:");
    let mut rooms = vec![bob.line(), bob.line(), bob.line()];
    rooms.sort();
    assert_eq!(
        rooms,
        [
            "* #lobby (1): be very kind",
            "* #news (0): fresh",
            "* #side (1)"
        ]
    );
    barrier(&mut alice, "alice", &mut bob, "bob");
}
