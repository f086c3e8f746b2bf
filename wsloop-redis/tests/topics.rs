//! Topics across instances: a publish on one instance reaches the topic's subscribers on
//! every instance, through a real `redis-server` that each test starts on a free 127.0.0.1
//! port and kills at its end. Subscriptions stay on the instance holding the session.
//!
//! "Not received" is checked with a marker sent after the publish along a path that keeps
//! order with it (the same loop's queue, the same Redis subscription): a page that did not
//! get the publish gets the marker first; a page that would get it twice gets it again
//! before the marker.

mod common;

use common::*;
use wsloop::Message;
use wsloop_redis::BridgeError;

/// A broadcast through Redis from outside, which every instance applies after whatever it
/// received from Redis before.
fn marker(redis: &RedisServer, text: &str) {
    let envelope = format!(r#"{{"type":"broadcast","text":"{text}"}}"#);
    assert_eq!(publish(&mut redis.conn(), "wsloop:events", &envelope), 2);
}

#[test]
fn a_publish_on_one_instance_reaches_the_topics_subscribers_on_every_instance() {
    init_logs();
    let redis = RedisServer::start();
    // Two loops on A: its pages are spread over both.
    let a = Instance::start_loops(config(&redis.url(), "a"), 2);
    let b = Instance::start(config(&redis.url(), "b"));
    let mut a_shop7 = [a.connect("a-shop7-1"), a.connect("a-shop7-2")];
    let mut a_shop8 = a.connect("a-shop8");
    let mut a_none = a.connect("a-none");
    let mut b_shop7 = b.connect("b-shop7");
    let mut b_none = b.connect("b-none");
    for page in &mut a_shop7 {
        join(page, "shop-7");
    }
    join(&mut a_shop8, "shop-8");
    join(&mut b_shop7, "shop-7");

    // An HTTP request handled on B's loop publishes through B's bridge.
    let answer = post(b.addr, "/publish/shop-7", "order 42");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    for page in &mut a_shop7 {
        assert_eq!(text(page), "order 42");
    }
    assert_eq!(text(&mut b_shop7), "order 42");

    // A's copy came through Redis, and B's subscription got the same message then: a marker
    // published now reaches every page after it. B's subscriber had it exactly once (its
    // own publish, back from Redis, is skipped), the others not at all.
    marker(&redis, "marker 1");
    for page in a_shop7.iter_mut().chain([&mut a_shop8, &mut a_none]) {
        assert_eq!(text(page), "marker 1");
    }
    for page in [&mut b_shop7, &mut b_none] {
        assert_eq!(text(page), "marker 1");
    }

    // From any thread, in binary, to the other topic.
    b.bridge
        .publish("shop-8", Message::Binary(vec![0, 1, 255]))
        .unwrap();
    assert_eq!(a_shop8.recv().unwrap(), Message::Binary(vec![0, 1, 255]));

    // A page that leaves a topic gets no more of it; the others still do.
    leave(&mut a_shop7[0], "shop-7");
    a.bridge.publish("shop-7", "order 43").unwrap();
    assert_eq!(text(&mut a_shop7[1]), "order 43");
    assert_eq!(text(&mut b_shop7), "order 43");
    marker(&redis, "marker 2");
    for page in a_shop7.iter_mut().chain([&mut a_shop8, &mut a_none]) {
        assert_eq!(text(page), "marker 2");
    }
    for page in [&mut b_shop7, &mut b_none] {
        assert_eq!(text(page), "marker 2");
    }
}

#[test]
fn a_handler_publishes_here_counted_and_to_the_others_through_redis() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let mut a_pages = [a.connect("a-1"), a.connect("a-2")];
    let mut a_none = a.connect("a-none");
    let mut b_page = b.connect("b-1");
    for page in &mut a_pages {
        join(page, "room");
    }
    join(&mut b_page, "room");

    // `Context::publish` reaches A's two subscribers and counts them; `publish_remote`
    // leaves A out (it has delivered already) and reaches B.
    let answer = post(a.addr, "/publish-here/room", "hi all");
    assert!(answer.ends_with(r#"{"delivered":2}"#), "{answer}");
    for page in &mut a_pages {
        assert_eq!(text(page), "hi all");
    }
    assert_eq!(text(&mut b_page), "hi all");
    marker(&redis, "marker");
    for page in a_pages.iter_mut().chain([&mut a_none, &mut b_page]) {
        assert_eq!(text(page), "marker");
    }

    // A topic nobody here follows: delivered to no one here, still sent to the others.
    let answer = post(b.addr, "/publish-here/other", "nobody");
    assert!(answer.ends_with(r#"{"delivered":0}"#), "{answer}");
}

#[test]
fn a_plain_publish_of_the_envelope_reaches_the_subscribers_of_every_instance() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let b = Instance::start(config(&redis.url(), "b"));
    let mut a_page = a.connect("a-1");
    let mut a_none = a.connect("a-none");
    let mut b_page = b.connect("b-1");
    join(&mut a_page, "shop-7");
    join(&mut b_page, "shop-7");
    let mut business = redis.conn(); // any Redis client, in any language
    let events = "wsloop:events";

    let subscribers = publish(
        &mut business,
        events,
        r#"{"type":"publish","topic":"shop-7","text":"order 42"}"#,
    );
    assert_eq!(subscribers, 2);
    assert_eq!(text(&mut a_page), "order 42");
    assert_eq!(text(&mut b_page), "order 42");

    publish(
        &mut business,
        events,
        r#"{"type":"publish","topic":"shop-7","binary":"AAEC/w=="}"#,
    );
    assert_eq!(a_page.recv().unwrap(), Message::Binary(vec![0, 1, 2, 255]));
    assert_eq!(b_page.recv().unwrap(), Message::Binary(vec![0, 1, 2, 255]));

    // An `origin` is skipped by that instance only.
    publish(
        &mut business,
        events,
        r#"{"type":"publish","topic":"shop-7","text":"from a","origin":"a"}"#,
    );
    assert_eq!(text(&mut b_page), "from a");

    // Malformed publishes are logged and skipped; the next one is delivered.
    for garbage in [
        r#"{"type":"publish","text":"no topic"}"#,
        r#"{"type":"publish","topic":7,"text":"topic not a string"}"#,
        r#"{"type":"publish","topic":"shop-7"}"#,
    ] {
        publish(&mut business, events, garbage);
    }
    marker(&redis, "marker");
    for page in [&mut a_page, &mut a_none, &mut b_page] {
        assert_eq!(text(page), "marker");
    }
}

#[test]
fn a_publish_reaches_this_instances_subscribers_even_when_redis_cannot_take_it() {
    init_logs();
    let redis = RedisServer::start();
    let a = Instance::start(config(&redis.url(), "a"));
    let mut page = a.connect("a-1");
    join(&mut page, "shop-7");
    // A stopped bridge takes nothing more for Redis (as a full backlog would not)...
    a.bridge.stop();
    assert_eq!(
        a.bridge.publish("shop-7", "order 42"),
        Err(BridgeError::Stopped)
    );
    assert_eq!(
        a.bridge.publish_remote("shop-7", "order 42"),
        Err(BridgeError::Stopped)
    );
    // ...but this instance's own subscribers still get the message, once.
    assert_eq!(text(&mut page), "order 42");
    a.handle.broadcast("marker").unwrap();
    assert_eq!(text(&mut page), "marker");
}
