//! The size limits and the I/O layer's allowance: what a peer may make a session hold, and
//! the answers beyond it (1009 for the limits, 1013 for the allowance), from the header,
//! before any of the payload is buffered.

use super::*;

#[test]
fn frame_over_the_limit_is_1009_before_its_payload_arrives() {
    let config = SessionLimits {
        max_frame_size: 100,
        max_message_size: 1000,
    };
    let mut s = Session::new(Role::Server, config);
    // Only the header of a 101-byte frame.
    let bytes = client_frame(0x2, true, &[0u8; 101]);
    assert_eq!(s.receive(&bytes[..6]), Err(ProtocolError::FrameTooLarge));
    assert!(s
        .output()
        .ends_with(&failing_close(ProtocolError::FrameTooLarge)));
    let mut s = Session::new(Role::Server, config);
    assert_eq!(s.receive(&client_frame(0x2, true, &[0u8; 100])), Ok(()));
}

#[test]
fn message_over_the_limit_is_1009_from_the_header_of_the_fragment_that_overflows() {
    let config = SessionLimits {
        max_frame_size: 100,
        max_message_size: 150,
    };
    let mut s = Session::new(Role::Server, config);
    s.receive(&client_frame(0x2, false, &[1u8; 100])).unwrap();
    let last = client_frame(0x0, true, &[1u8; 51]);
    assert_eq!(s.receive(&last[..6]), Err(ProtocolError::MessageTooLarge));
    assert_eq!(
        s.message_buf_capacity(),
        0,
        "the partial message is dropped"
    );
    let mut s = Session::new(Role::Server, config);
    s.receive(&client_frame(0x2, false, &[1u8; 100])).unwrap();
    s.receive(&client_frame(0x0, true, &[1u8; 50])).unwrap();
    assert_eq!(events(&mut s), [binary(&[1u8; 150])]);
}

#[test]
fn a_huge_announced_length_allocates_nothing() {
    let mut s = server();
    // 2^62 bytes announced, then 100 bytes of payload.
    let mut bytes = vec![0x82, 0xff];
    bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    bytes.extend_from_slice(&[0u8; 100]);
    assert_eq!(s.receive(&bytes), Err(ProtocolError::FrameTooLarge));
    assert_eq!(s.message_buf_capacity(), 0);
}

/// The I/O layer's allowance (a server's memory budget): a data frame that would take the
/// message past it is refused from its header, with 1013, not the 1009 of the limits.
#[test]
fn a_frame_past_the_receive_allowance_fails_with_1013_from_its_header() {
    let mut s = server();
    s.set_receive_allowance(100);
    // The first fragment fits: 60 bytes held.
    assert_eq!(s.receive(&client_frame(0x2, false, &[1; 60])), Ok(()));
    assert_eq!(s.buffered_bytes(), 60);
    // 60 + 41 does not: refused from the header alone (no payload follows it here).
    let header = &client_frame(0x0, true, &[2; 41])[..2 + 4];
    assert_eq!(s.receive(header), Err(ProtocolError::Overloaded));
    assert!(events(&mut s).is_empty());
    assert_eq!(
        s.take_output(),
        failing_close(ProtocolError::Overloaded),
        "1013 Try Again Later"
    );
    assert_eq!(s.buffered_bytes(), 0, "the message is dropped");

    // Exactly the allowance fits; lowering it below what is held fails at the next frame.
    let mut s = server();
    s.set_receive_allowance(100);
    assert_eq!(s.receive(&client_frame(0x2, false, &[1; 40])), Ok(()));
    assert_eq!(s.receive(&client_frame(0x0, false, &[1; 60])), Ok(()));
    s.set_receive_allowance(50);
    assert_eq!(
        s.receive(&client_frame(0x0, true, &[])),
        Err(ProtocolError::Overloaded)
    );
}
