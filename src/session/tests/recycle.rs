//! Buffers lent by the I/O layer (`Session::receive_pooled`): when a data frame borrows one,
//! that the message handed out is that buffer, and that earlier fragments survive the move.

use super::*;

/// A pool for the tests: lends buffers of `lend` bytes' capacity, records what it is asked
/// for and what comes back.
#[derive(Default)]
struct TestPool {
    lend: usize,
    asked: Vec<usize>,
    given: Vec<usize>,
}

impl crate::session::Recycle for TestPool {
    fn take(&mut self, need: usize) -> Option<Vec<u8>> {
        self.asked.push(need);
        (self.lend >= need).then(|| Vec::with_capacity(self.lend))
    }

    fn give(&mut self, buffer: Vec<u8>) {
        self.given.push(buffer.capacity());
    }
}

#[test]
fn a_data_frame_with_no_room_borrows_from_the_pool_and_the_message_is_that_buffer() {
    let mut pool = TestPool {
        lend: 1 << 20,
        ..TestPool::default()
    };
    let mut s = server();
    let big = vec![5u8; 70_000];
    s.receive_pooled(&client_frame(0x2, true, &big), &mut pool)
        .unwrap();
    // Asked once, for the whole frame, when its payload began.
    assert_eq!(pool.asked, [70_000]);
    match s.next_event() {
        Some(Event::Message(Message::Binary(bytes))) => {
            assert_eq!(bytes, big);
            assert_eq!(bytes.capacity(), 1 << 20, "the message is the lent buffer");
        }
        other => panic!("{other:?}"),
    }
    // A control frame never borrows: its payload has a buffer of its own.
    s.receive_pooled(&client_frame(0x9, true, b"ping"), &mut pool)
        .unwrap();
    assert_eq!(pool.asked, [70_000]);
}

#[test]
fn a_pool_with_nothing_to_lend_leaves_the_message_to_allocate() {
    let mut pool = TestPool::default();
    let mut s = server();
    s.receive_pooled(&client_frame(0x1, true, b"hello"), &mut pool)
        .unwrap();
    assert_eq!(pool.asked, [5]);
    assert_eq!(events(&mut s), [text("hello")]);
}

#[test]
fn a_borrowed_buffer_keeps_the_fragments_already_received_and_the_old_one_goes_back() {
    let mut s = server();
    s.receive(&client_frame(0x2, false, b"head")).unwrap();
    let mut pool = TestPool {
        lend: 1 << 20,
        ..TestPool::default()
    };
    let big = vec![9u8; 70_000];
    s.receive_pooled(&client_frame(0x0, true, &big), &mut pool)
        .unwrap();
    assert_eq!(pool.asked, [4 + 70_000]);
    assert_eq!(
        pool.given.len(),
        1,
        "the fragments' own buffer was given back"
    );
    let mut expected = b"head".to_vec();
    expected.extend_from_slice(&big);
    assert_eq!(events(&mut s), [binary(&expected)]);
}
