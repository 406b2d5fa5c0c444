use super::*;
use crate::config::Config;
use crate::outbox::Close;

fn user(hub: &Hub, nick: &str) -> (ClientId, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::new(1 << 16));
    let meter = Arc::default();
    let id = hub.connect(([127, 0, 0, 1], 1).into(), outbox.clone(), meter);
    hub.login(id, nick, || true).unwrap();
    (id, outbox)
}

fn settings(announce_max: usize) -> RoomSettings {
    let mut config = Config::default();
    config.chat.timestamps = false;
    config.chat.announce_max = announce_max;
    config.chat.history = 2;
    config.chat.max_rooms = 2;
    config.chat.rooms = vec![crate::config::ConfigRoom {
        name: "#news".into(),
        topic: Some("read only".into()),
    }];
    RoomSettings::from(&config)
}

/// A hub whose lines carry no timestamps, so tests can compare them.
fn plain_hub() -> Hub {
    Hub::new(settings(0), Events::default())
}

fn take(outbox: &Outbox) -> String {
    let mut buf = Vec::new();
    outbox.drain_into(&mut buf, usize::MAX);
    String::from_utf8(buf).unwrap()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

#[test]
fn join_say_whisper_leave() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    assert_eq!(
        take(&ao),
        "* welcome, alice! 1 user online; /h shows help\r\n* you are in #lobby (1 here)\r\n"
    );
    let (b, bo) = user(&hub, "Bob");
    assert_eq!(take(&ao), "* Bob joined\r\n");
    assert_eq!(
        take(&bo),
        "* welcome, Bob! 2 users online; /h shows help\r\n* you are in #lobby (2 here)\r\n"
    );
    assert_eq!(hub.login(b, "ALICE", || true), Err(NickError::Taken));

    assert_eq!(
        hub.say(a, &hub.format().group("alice", "hi")),
        Ok(Fanout {
            delivered: 1,
            skipped: 0
        })
    );
    assert_eq!(take(&ao), "");
    assert_eq!(take(&bo), "<alice> hi\r\n");

    hub.whisper(a, "alice", "bob", "psst").unwrap();
    assert_eq!(take(&ao), "[alice -> Bob] psst\r\n");
    assert_eq!(take(&bo), "[alice -> Bob] psst\r\n");
    assert_eq!(hub.whisper(a, "alice", "carol", "x"), Err(NoSuchUser));

    assert!(hub.toggle_ignore(b));
    hub.say(a, &hub.format().group("alice", "again")).unwrap();
    assert_eq!(take(&bo), "");
    assert_eq!(hub.say(b, &hub.format().group("Bob", "x")), Err(Ignoring));

    assert_eq!(hub.leave(b).as_deref(), Some("Bob"));
    assert_eq!(hub.leave(b), None);
    assert_eq!(take(&ao), "* Bob left\r\n");
    assert_eq!(hub.members(a).unwrap().1.len(), 1);
}

#[test]
fn rooms_are_apart_and_user_rooms_come_and_go() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    let (b, bo) = user(&hub, "bob");
    take(&ao);
    take(&bo);
    assert_eq!(
        hub.join(a, &room("Rust"), || Ok(())).as_deref(),
        Ok("#Rust")
    );
    assert_eq!(take(&bo), "* alice left for #Rust\r\n");
    assert_eq!(take(&ao), "* you are in #Rust (1 here)\r\n");
    assert_eq!(
        hub.join(a, &room("rust"), || Ok(())),
        Err(JoinError::Already("#Rust".into()))
    );
    hub.say(a, &Bytes::from_static(b"<alice> one\r\n")).unwrap();
    assert_eq!(take(&bo), "");
    hub.join(b, &room("RUST"), || panic!("exists")).unwrap();
    assert_eq!(take(&ao), "* bob joined\r\n");
    assert_eq!(take(&bo), "* you are in #Rust (2 here)\r\n<alice> one\r\n");
    assert_eq!(hub.rooms().len(), 3);
    hub.join(a, &room("news"), || panic!("configured")).unwrap();
    assert_eq!(
        take(&ao),
        "* you are in #news (1 here)\r\n* topic: read only\r\n"
    );
    assert_eq!(hub.set_topic_by(a, "x".into()), Err(Arc::from("#news")));
    hub.join(b, &room("lobby"), || Ok(())).unwrap();
    let names: Vec<String> = hub.rooms().into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["#lobby", "#news"], "the empty user room went away");
    // max_rooms = 2, creation paced by the caller.
    hub.join(a, &room("one"), || Ok(())).unwrap();
    hub.join(b, &room("two"), || Ok(())).unwrap();
    assert_eq!(
        hub.join(a, &room("three"), || Ok(())),
        Err(JoinError::TooMany)
    );
    let wait = Duration::from_secs(7);
    assert_eq!(hub.join(a, &room("two"), || Err(wait)).map(|_| ()), Ok(()));
    hub.join(b, &room("lobby"), || Ok(())).unwrap();
    assert_eq!(
        hub.join(b, &room("four"), || Err(wait)),
        Err(JoinError::TooFast(wait))
    );
    assert_eq!(hub.counts(), (2, 2, 3));
}

#[test]
fn history_is_bounded_and_purged_by_a_ban() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    let (b, _) = user(&hub, "bob");
    for (id, text) in [(a, "1"), (b, "2"), (a, "3"), (b, "4")] {
        hub.say(id, &Bytes::from(format!("{text}\r\n"))).unwrap();
    }
    take(&ao);
    let (_, co) = user(&hub, "carol");
    assert!(take(&co).ends_with("(3 here)\r\n3\r\n4\r\n"), "history = 2");
    let notice = Bytes::from_static(b"! banned\r\n");
    hub.expel(|_, keys| keys.contains(&"bob"), &notice, None);
    let (_, do_) = user(&hub, "dave");
    assert!(take(&do_).ends_with("(3 here)\r\n3\r\n"), "bob's line gone");
}

#[test]
fn nick_changes_ignores_and_away() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    let (b, bo) = user(&hub, "bob");
    take(&ao);
    take(&bo);
    assert_eq!(hub.ignore(a, "BOB").as_deref(), Ok("bob"));
    assert_eq!(hub.ignore(a, "alice"), Err(IgnoreError::Yourself));
    assert_eq!(hub.ignore(a, "zed"), Err(IgnoreError::NoSuchUser));
    assert_eq!(hub.rename(a, "bob", "bob"), Err(NickError::Taken));
    assert_eq!(
        hub.rename(b, "bobby", &nick::key("bobby")).as_deref(),
        Ok("bob")
    );
    assert_eq!(take(&ao), "* bob is now known as bobby\r\n");
    assert_eq!(take(&bo), "* bob is now known as bobby\r\n");
    hub.say(b, &Bytes::from_static(b"<bobby> hi\r\n")).unwrap();
    hub.whisper(b, "bobby", "alice", "psst").unwrap();
    assert_eq!(take(&ao), "", "the ignore follows the person");
    assert_eq!(
        take(&bo),
        "[bobby -> alice] psst\r\n",
        "and they are not told"
    );
    assert_eq!(hub.ignored(a), [Arc::from("bobby")]);
    assert_eq!(hub.unignore(a, "bob"), Err(IgnoreError::NotIgnoring));
    assert_eq!(hub.unignore(a, "bobby").as_deref(), Ok("bobby"));
    hub.set_away(a, Some("lunch".into()));
    hub.whisper(b, "bobby", "alice", "hey").unwrap();
    assert_eq!(
        take(&bo),
        "[bobby -> alice] hey\r\n* alice is away: lunch\r\n"
    );
    let (_, members) = hub.members(b).unwrap();
    assert!(members[0].away && !members[1].away);
    // A ban on the name given up still finds the person.
    let notice = Bytes::from_static(b"! banned\r\n");
    let gone = hub.expel(|_, keys| keys.contains(&"bob"), &notice, None);
    assert_eq!(gone, [Arc::from("bobby")]);
}

#[test]
fn too_many_ignores() {
    let hub = plain_hub();
    let (a, _) = user(&hub, "alice");
    for i in 0..people::MAX_IGNORES {
        user(&hub, &format!("u{i}"));
        hub.ignore(a, &format!("u{i}")).unwrap();
    }
    user(&hub, "last");
    assert_eq!(hub.ignore(a, "last"), Err(IgnoreError::TooMany));
    assert!(hub.ignore(a, "u0").is_ok(), "again is no new entry");
}

#[test]
fn kick_wall_topic_and_close_all() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    let (b, bo) = user(&hub, "bob");
    hub.toggle_ignore(b);
    take(&ao);
    take(&bo);
    assert_eq!(hub.wall("hi", None), Ok(2));
    assert_eq!(take(&bo), "* [server] hi\r\n");
    hub.join(a, &room("x"), || Ok(())).unwrap();
    take(&ao);
    take(&bo);
    assert_eq!(hub.wall("only x", Some(&room("X"))), Ok(1));
    assert_eq!(hub.wall("none", Some(&room("nope"))), Err(NoSuchUser));
    assert_eq!(take(&bo), "");
    hub.set_topic_by(a, "mine".into()).unwrap();
    hub.set_topic(&room("x"), None).unwrap();
    assert_eq!(
        take(&ao),
        "* [server] only x\r\n* alice set the topic: mine\r\n* the operators cleared the topic\r\n"
    );
    assert_eq!(hub.kick("BOB", Some("spam")).as_deref(), Ok("bob"));
    assert_eq!(take(&bo), "! you were kicked: spam\r\n");
    assert_eq!(bo.closing(), Some(Close::Kicked));
    assert_eq!(take(&ao), "", "kicks are told in the room only");
    assert_eq!(hub.kick("bob", None), Err(NoSuchUser));
    hub.close_all(&Bytes::from_static(b"bye\r\n"));
    assert_eq!(take(&ao), "bye\r\n");
    assert_eq!(ao.closing(), Some(Close::Shutdown));
}

#[test]
fn announcements_stop_above_announce_max() {
    let hub = Hub::new(settings(2), Events::default());
    let (_, ao) = user(&hub, "alice");
    let (b, _) = user(&hub, "bob");
    let (c, co) = user(&hub, "carol");
    take(&co);
    assert_eq!(
        take(&ao),
        "* welcome, alice! 1 user online; /h shows help\r\n* you are in #lobby (1 here)\r\n* bob joined\r\n"
    );
    hub.leave(c);
    assert_eq!(take(&ao), "");
    hub.leave(b);
    assert_eq!(take(&ao), "* bob left\r\n");
    let (_, _) = user(&hub, "dave");
    hub.kick("dave", None).unwrap();
    assert_eq!(take(&ao), "* dave joined\r\n* dave was kicked\r\n");
}

#[test]
fn a_reload_makes_rooms_and_sets_their_topics_without_moving_anyone() {
    let hub = plain_hub();
    let (a, ao) = user(&hub, "alice");
    hub.join(a, &room("news"), || Ok(())).unwrap();
    take(&ao);
    let mut next = settings(0);
    let news = next
        .rooms
        .iter()
        .position(|(r, _)| &*r.shown == "#news")
        .unwrap();
    next.rooms[news].1 = Some("new topic".into());
    next.rooms.push((room("extra"), None));
    hub.set_settings(next.clone());
    assert_eq!(take(&ao), "* the operators set the topic: new topic\r\n");
    assert_eq!(hub.rooms().len(), 3);
    hub.set_settings(next);
    assert_eq!(take(&ao), "", "an unchanged topic is not set again");
    hub.set_settings(settings(0));
    assert_eq!(take(&ao), "* the operators set the topic: read only\r\n");
    assert_eq!(hub.rooms().len(), 2, "#extra, empty, went");
    assert_eq!(hub.topic(a).unwrap().0.as_ref(), "#news");
}

#[test]
fn expel_by_address_or_nick() {
    let hub = plain_hub();
    let (_, ao) = user(&hub, "alice");
    let (_, bo) = user(&hub, "Bob");
    take(&ao);
    take(&bo);
    let notice = Formatter::error(format_args!("you are banned: spam"));
    let gone = hub.expel(|_, keys| keys.contains(&"bob"), &notice, Some("spam"));
    assert_eq!(gone, vec![Arc::from("Bob")]);
    assert_eq!(take(&bo), "! you are banned: spam\r\n");
    assert_eq!(bo.closing(), Some(Close::Banned));
    assert_eq!(take(&ao), "* Bob was banned (spam)\r\n");
    assert!(hub.tell("alice", Bytes::from_static(b"x\r\n")));
    assert!(!hub.tell("bob", Bytes::from_static(b"x\r\n")));
    assert!(hub.is_online("alice"));
    let gone = hub.expel(|ip, _| ip.is_loopback(), &notice, None);
    assert_eq!(gone.len(), 1);
    assert_eq!(hub.counts().0, 0);
}
