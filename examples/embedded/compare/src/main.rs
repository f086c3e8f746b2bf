//! The firmware's job (`examples/embedded`: accept the handshake, echo every message chunk by
//! chunk through a 256-byte buffer, answer Pings and the Close) with embedded-websocket 0.9,
//! over the same mailbox, with the same buffers, for the size comparison of issue 20.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use embedded_websocket as ws;
use ws::{WebSocketReceiveMessageType as Rx, WebSocketSendMessageType as Tx};

const MAILBOX: usize = 64;

#[no_mangle]
pub static RX: [AtomicU8; MAILBOX] = [const { AtomicU8::new(0) }; MAILBOX];
#[no_mangle]
pub static RX_LEN: AtomicUsize = AtomicUsize::new(0);
#[no_mangle]
pub static TX: [AtomicU8; MAILBOX] = [const { AtomicU8::new(0) }; MAILBOX];
#[no_mangle]
pub static TX_LEN: AtomicUsize = AtomicUsize::new(0);

fn read(buf: &mut [u8]) -> usize {
    let mut n = RX_LEN.load(Ordering::Acquire);
    while n == 0 {
        core::hint::spin_loop();
        n = RX_LEN.load(Ordering::Acquire);
    }
    let n = n.min(buf.len()).min(MAILBOX);
    for (byte, cell) in buf[..n].iter_mut().zip(&RX) {
        *byte = cell.load(Ordering::Relaxed);
    }
    RX_LEN.store(0, Ordering::Release);
    n
}

fn write_all(bytes: &[u8]) {
    for piece in bytes.chunks(MAILBOX) {
        while TX_LEN.load(Ordering::Acquire) != 0 {
            core::hint::spin_loop();
        }
        for (cell, byte) in TX.iter().zip(piece) {
            cell.store(*byte, Ordering::Relaxed);
        }
        TX_LEN.store(piece.len(), Ordering::Release);
    }
}

const CHUNK: usize = 256;

fn serve() {
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; CHUNK + 14 + 2 * 131];
    let mut server = ws::WebSocketServer::new_server();
    // The handshake.
    let mut filled = 0;
    let end_of_head;
    loop {
        let n = read(&mut rx[filled..]);
        if n == 0 {
            return;
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 24];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&rx[..filled]) {
            Ok(httparse::Status::Complete(len)) => end_of_head = len,
            Ok(httparse::Status::Partial) if filled < rx.len() => continue,
            _ => {
                write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
                return;
            }
        }
        let headers = request.headers.iter().map(|h| (h.name, h.value));
        match ws::read_http_header(headers) {
            Ok(Some(context)) => {
                let Ok(len) = server.server_accept(&context.sec_websocket_key, None, &mut tx)
                else {
                    return;
                };
                write_all(&tx[..len]);
                break;
            }
            _ => {
                write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
                return;
            }
        }
    }
    // The echo.
    let mut chunk = [0u8; CHUNK];
    let (mut start, mut end) = (end_of_head, filled);
    loop {
        match server.read(&rx[start..end], &mut chunk) {
            Ok(r) => {
                start += r.len_from;
                let reply = match r.message_type {
                    Rx::Text => Some(Tx::Text),
                    Rx::Binary => Some(Tx::Binary),
                    Rx::Ping => Some(Tx::Pong),
                    Rx::CloseMustReply => Some(Tx::CloseReply),
                    Rx::Pong | Rx::CloseCompleted => None,
                };
                if let Some(kind) = reply {
                    let last = r.end_of_message || kind != Tx::Text && kind != Tx::Binary;
                    match server.write(kind, last, &chunk[..r.len_to], &mut tx) {
                        Ok(n) => write_all(&tx[..n]),
                        Err(_) => return,
                    }
                    if kind == Tx::CloseReply {
                        return;
                    }
                }
            }
            Err(ws::Error::ReadFrameIncomplete) => {
                // Keep the partial frame, read more after it.
                rx.copy_within(start..end, 0);
                end -= start;
                start = 0;
                if end == rx.len() {
                    return;
                }
                let n = read(&mut rx[end..]);
                if n == 0 {
                    return;
                }
                end += n;
            }
            Err(_) => return,
        }
        if start == end {
            start = 0;
            end = read(&mut rx);
            if end == 0 {
                return;
            }
        }
    }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    loop {
        serve();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
