//! The server beside tokio, end to end: `examples/tokio.rs`'s own `start`, `answer` and
//! `ticker` (included by path) on a multi-thread runtime, a blocking client over 127.0.0.1
//! sending a message and getting the async side's answer and a topic's tick; the handler's
//! "busy" answer when the async side is behind; and `Handle` calls from a task returning at
//! once even when no loop runs to take the commands. Every wait is bounded.

#[allow(dead_code)] // the example's `main` is the example's, not the test's
#[path = "../examples/tokio.rs"]
mod example;

use std::time::{Duration, Instant};

use wsloop::client::Client;
use wsloop::server::{HandleError, Server, COMMAND_QUEUE_LIMIT};
use wsloop::{CloseCode, Message};

const WAIT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn connect(addr: std::net::SocketAddr, sid: &str) -> Client {
    let mut client = Client::connect(&format!("ws://{addr}/ws/{sid}")).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client
}

fn recv_text(client: &mut Client) -> String {
    match client.recv().unwrap() {
        Message::Text(text) => text,
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn a_message_goes_to_async_code_and_its_answer_comes_back_through_the_handle() {
    let example::Started {
        addr,
        handle,
        thread,
        requests,
    } = example::start("127.0.0.1:0", 64).unwrap();
    let runtime = runtime();
    runtime.spawn(example::answer(handle.clone(), requests));
    runtime.spawn(example::ticker(handle.clone(), Duration::from_millis(50)));

    let mut client = connect(addr, "alice");
    client.send_text("order 42").unwrap();
    // The answer and the ticks arrive in any order; each within the read timeout.
    let (mut answer, mut tick) = (None, None);
    let deadline = Instant::now() + WAIT;
    while (answer.is_none() || tick.is_none()) && Instant::now() < deadline {
        let text = recv_text(&mut client);
        if text.starts_with("tick ") {
            tick = Some(text);
        } else {
            answer = Some(text);
        }
    }
    assert_eq!(answer.as_deref(), Some("looked up: order 42"));
    assert!(
        tick.is_some(),
        "a tick published from a task reached the session"
    );
    client.close(CloseCode::NormalClosure, "done").unwrap();

    // `shutdown` waits for the loop: from a blocking thread of the runtime, as the example does.
    runtime
        .block_on(async {
            tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || handle.shutdown())).await
        })
        .expect("the shutdown finished in time")
        .unwrap();
    thread.join().unwrap().unwrap();
    runtime.shutdown_timeout(WAIT);
}

#[test]
fn when_the_async_side_is_behind_the_handler_answers_busy_at_once() {
    // Capacity 2 and nobody draining: the third message finds the channel full.
    let example::Started {
        addr,
        handle,
        thread,
        mut requests,
    } = example::start("127.0.0.1:0", 2).unwrap();
    let mut client = connect(addr, "bob");
    for n in 1..=3 {
        client.send_text(&format!("request {n}")).unwrap();
    }
    assert_eq!(recv_text(&mut client), example::BUSY);
    client.close(CloseCode::NormalClosure, "done").unwrap();
    handle.shutdown();
    thread.join().unwrap().unwrap();
    // The two that fitted are still there for the async side, in order.
    let first = requests.try_recv().unwrap();
    assert_eq!(
        (first.sid.as_str(), first.text.as_str()),
        ("bob", "request 1")
    );
    assert_eq!(requests.try_recv().unwrap().text, "request 2");
}

#[test]
fn handle_calls_from_a_task_never_wait_for_the_loop() {
    // A server whose loop never runs: nothing takes the commands, so a call that waited for
    // the loop would hang here. Each returns at once: queued, then `QueueFull` at the bound.
    let server = Server::builder().bind("127.0.0.1:0").build().unwrap();
    let handle = server.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (queued, refused) = runtime
        .block_on(async {
            tokio::time::timeout(WAIT, async move {
                let mut queued = 0;
                let refused = loop {
                    match handle.send("anyone", "hello") {
                        Ok(()) => queued += 1,
                        Err(e) => break e,
                    }
                    if queued % 1024 == 0 {
                        tokio::task::yield_now().await; // a well-behaved task between batches
                    }
                };
                (queued, refused)
            })
            .await
        })
        .expect("handle calls returned without waiting for the loop");
    assert_eq!(queued, COMMAND_QUEUE_LIMIT);
    assert_eq!(refused, HandleError::QueueFull);
    drop(server);
}
