//! Several server instances in one process, joined through a real `redis-server` that each
//! test starts on a free 127.0.0.1 port and kills at its end.

mod common;

use std::time::{Duration, Instant};

use common::*;
use wsloop::client::{Client, ClientError};
use wsloop::handshake::ClientHandshakeError;
use wsloop::server::CloseReason;
use wsloop::{CloseCode, CloseFrame, Message};

fn replaced() -> CloseFrame {
    CloseFrame::new(CloseCode::Private(4000), "replaced")
}

#[test]
fn a_remind_posted_to_one_instance_reaches_pages_on_every_instance() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let c = Instance::start(config(&redis.url(), "c"));
    let mut pages = [
        a.connect("page-a"),
        b.connect("page-b"),
        c.connect("page-c"),
    ];

    // An HTTP request handled on B's loop broadcasts through B's bridge.
    let answer = http(
        b.addr,
        "POST /broadcast HTTP/1.1\r\nHost: b\r\nContent-Length: 8\r\n\r\norder 42",
    );
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    for page in &mut pages {
        assert_eq!(text(page), "order 42");
    }

    // From any thread, too; and each page got the first one exactly once.
    c.bridge.broadcast("order 43").unwrap();
    for page in &mut pages {
        assert_eq!(text(page), "order 43");
    }
}

#[test]
fn a_broadcast_reaches_this_instances_pages_even_when_redis_cannot_take_it() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let mut page = a.connect("page-a");
    // A stopped bridge takes nothing more for Redis (as a full backlog would not)...
    a.bridge.stop();
    assert_eq!(
        a.bridge.broadcast("order 42"),
        Err(wsloop_redis::BridgeError::Stopped)
    );
    // ...but this instance's own pages still get the message.
    assert_eq!(text(&mut page), "order 42");
}

#[test]
fn a_plain_publish_of_the_envelope_reaches_the_pages() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let mut page_a = a.connect("page-a");
    let mut page_b = b.connect("page-b");
    let mut business = redis.conn(); // any Redis client, in any language

    let events = "wsloop:events";
    let subscribers = publish(
        &mut business,
        events,
        r#"{"type":"broadcast","text":"order 42"}"#,
    );
    assert_eq!(subscribers, 2);
    assert_eq!(text(&mut page_a), "order 42");
    assert_eq!(text(&mut page_b), "order 42");

    publish(
        &mut business,
        events,
        r#"{"type":"broadcast","binary":"AAEC/w=="}"#,
    );
    for page in [&mut page_a, &mut page_b] {
        assert_eq!(page.recv().unwrap(), Message::Binary(vec![0, 1, 2, 255]));
    }

    // A send on the events channel is applied by the instance that holds the sid only;
    // garbage is logged and skipped.
    publish(&mut business, events, "order 44, not JSON");
    publish(
        &mut business,
        events,
        r#"{"type":"send","sid":"page-b","text":"just you"}"#,
    );
    publish(
        &mut business,
        events,
        r#"{"type":"broadcast","text":"everyone"}"#,
    );
    assert_eq!(text(&mut page_a), "everyone");
    assert_eq!(text(&mut page_b), "just you");
    assert_eq!(text(&mut page_b), "everyone");

    publish(
        &mut business,
        events,
        r#"{"type":"close","sid":"page-a","code":4001,"reason":"logged out"}"#,
    );
    assert_eq!(
        close_frame(&mut page_a),
        CloseFrame::new(CloseCode::Private(4001), "logged out")
    );
    a.wait_for(|seen| matches!(seen, Seen::Close(sid, _) if sid == "page-a"));
}

#[test]
fn send_and_close_reach_the_instance_holding_the_sid() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let c = Instance::start(config(&redis.url(), "c"));
    let mut alice = a.connect("alice");
    let mut bob = c.connect("bob");
    wait_held_by(&redis, "alice", "a");
    wait_held_by(&redis, "bob", "c");

    // (Two instances publish independently: no order between them, so one at a time.)
    b.bridge.send("alice", "hello alice").unwrap();
    assert_eq!(text(&mut alice), "hello alice");
    c.bridge.send("alice", Message::Binary(vec![7; 3])).unwrap();
    assert_eq!(alice.recv().unwrap(), Message::Binary(vec![7; 3]));
    b.bridge.send("nobody", "dropped, logged").unwrap();
    a.bridge.send("bob", "hello bob").unwrap();
    assert_eq!(text(&mut bob), "hello bob");

    c.bridge
        .close("alice", CloseCode::Private(4001), "logged out")
        .unwrap();
    assert_eq!(
        close_frame(&mut alice),
        CloseFrame::new(CloseCode::Private(4001), "logged out")
    );
    // Its entry goes with it.
    wait_entry(&redis, "alice", WAIT, |v| v.is_none());
    wait_held_by(&redis, "bob", "c");
}

#[test]
fn a_duplicate_sid_on_another_instance_replaces_the_old_session() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let mut old = a.connect("tab");
    wait_held_by(&redis, "tab", "a");

    // The tab reconnects through the load balancer and lands on B.
    let mut new = b.connect("tab");
    assert_eq!(close_frame(&mut old), replaced());
    let seen = a.wait_for(|seen| matches!(seen, Seen::Close(sid, _) if sid == "tab"));
    assert!(
        matches!(&seen, Seen::Close(_, CloseReason::ByServer { close, .. }) if *close == replaced()),
        "{seen:?}"
    );
    wait_held_by(&redis, "tab", "b");

    // The sid now lives on B, for everyone.
    a.bridge.send("tab", "to the new tab").unwrap();
    assert_eq!(text(&mut new), "to the new tab");
    assert!(new.is_open());
}

#[test]
fn a_stopped_or_crashed_instance_leaves_the_others_serving_and_its_sids_expire() {
    init_logs();
    let ttl = Duration::from_secs(2);
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a").directory_ttl(ttl));
    let b = Instance::start(config(&redis.url(), "b").directory_ttl(ttl));
    let proxy = Proxy::start(redis.addr());
    let c = Instance::start(config(&proxy.url(), "c").directory_ttl(ttl));
    let mut page_a = a.connect("page-a");
    let _page_b = b.connect("page-b");
    let _page_c = c.connect("page-c");
    for (sid, instance) in [("page-a", "a"), ("page-b", "b"), ("page-c", "c")] {
        wait_held_by(&redis, sid, instance);
    }

    // A graceful stop releases its entries at once.
    b.stop();
    let took = wait_entry(&redis, "page-b", ttl, |v| v.is_none());
    assert!(took < ttl / 2, "released in {took:?}");

    // A crash: C loses Redis, then its server goes; nothing can release its entries.
    proxy.cut();
    let crashed = Instant::now();
    c.stop();
    assert!(entry(&mut redis.conn(), "page-c").is_some());
    wait_entry(&redis, "page-c", ttl + Duration::from_secs(2), |v| {
        v.is_none()
    });
    let gone = crashed.elapsed();
    assert!(
        gone <= ttl + Duration::from_secs(1),
        "expired after {gone:?}"
    );

    // Meanwhile A serves on, and is still in the directory.
    publish(
        &mut redis.conn(),
        "wsloop:events",
        r#"{"type":"broadcast","text":"still here"}"#,
    );
    assert_eq!(text(&mut page_a), "still here");
    assert!(entry(&mut redis.conn(), "page-a").is_some_and(|v| v.starts_with("a#")));
}

#[test]
fn after_a_redis_restart_the_instances_reconnect_and_deliver() {
    init_logs();
    let ttl = Duration::from_secs(3);
    let mut redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a").directory_ttl(ttl));
    let b = Instance::start(config(&redis.url(), "b").directory_ttl(ttl));
    let mut page_a = a.connect("page-a");
    let mut page_b = b.connect("page-b");
    wait_held_by(&redis, "page-a", "a");
    wait_held_by(&redis, "page-b", "b");

    redis.kill();
    let deadline = Instant::now() + WAIT;
    while a.bridge.is_connected() || b.bridge.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the loss of Redis went unnoticed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Without Redis, each instance still serves its own sessions.
    b.bridge.broadcast("during").unwrap();
    assert_eq!(text(&mut page_b), "during");

    redis.restart(); // empty: no directory, no subscribers
    assert!(a.bridge.wait_connected(WAIT) && b.bridge.wait_connected(WAIT));
    let mut conn = redis.conn();
    let subscribers: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("wsloop:events")
        .query(&mut conn)
        .unwrap();
    assert_eq!(subscribers, vec![("wsloop:events".to_string(), 2)]);
    // The directory is rebuilt from the instances' sessions.
    wait_held_by(&redis, "page-a", "a");
    wait_held_by(&redis, "page-b", "b");

    // Nothing published once they are back is lost.
    b.bridge.broadcast("after").unwrap();
    publish(
        &mut conn,
        "wsloop:events",
        r#"{"type":"broadcast","text":"after 2"}"#,
    );
    b.bridge.send("page-a", "direct").unwrap();
    // "during" waited in B's outbox and may reach A too, if A subscribed first.
    let mut got = Vec::new();
    while got.len() < 3 {
        let message = text(&mut page_a);
        if message != "during" {
            got.push(message);
        }
    }
    got.sort();
    assert_eq!(got, ["after", "after 2", "direct"]);
    assert_eq!(text(&mut page_b), "after");
    assert_eq!(text(&mut page_b), "after 2");
}

#[test]
fn the_applications_upgrade_decision_passes_through_the_bridge() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    match Client::connect(&format!("ws://{}/ws/forbidden", a.addr)) {
        Err(ClientError::Handshake(ClientHandshakeError::UnexpectedStatus(403))) => {}
        other => panic!("expected a 403, got {:?}", other.map(|_| ())),
    }
    let _page = a.connect("allowed");
    a.stop();
}
