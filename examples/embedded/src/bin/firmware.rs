//! The echo as bare-metal firmware for thumbv7em-none-eabihf (Cortex-M4F/M7F): `no_std`,
//! `no_main`, a panic handler, and no allocator. CI builds it and checks that no allocator
//! is linked.
//!
//! The byte stream is a mailbox in RAM of the kind a DMA engine or an interrupt handler fills
//! and drains: atomics, so that it needs no `unsafe` here. A real board would read its UART
//! or its network stack's socket instead; the WebSocket part is `serve`, the same code the
//! tests run over an in-memory stream.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use wsloop::session::SessionLimits;
use wsloop_embedded_example::{serve, ByteStream};

const MAILBOX: usize = 64;

// Exported symbols (`no_mangle`), so that the compiler cannot assume that only this code
// touches them: the other side of the mailbox (DMA, an interrupt, a debugger) does too.

/// Bytes received: `RX_LEN` of them in `RX`, put there by the receiving side.
#[no_mangle]
pub static RX: [AtomicU8; MAILBOX] = [const { AtomicU8::new(0) }; MAILBOX];
#[no_mangle]
pub static RX_LEN: AtomicUsize = AtomicUsize::new(0);
/// Bytes to send: `TX_LEN` of them in `TX`, taken by the sending side, which sets it to 0.
#[no_mangle]
pub static TX: [AtomicU8; MAILBOX] = [const { AtomicU8::new(0) }; MAILBOX];
#[no_mangle]
pub static TX_LEN: AtomicUsize = AtomicUsize::new(0);

struct Mailbox;

impl ByteStream for Mailbox {
    fn read(&mut self, buf: &mut [u8]) -> usize {
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

    fn write_all(&mut self, bytes: &[u8]) {
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
}

/// The entry point (the linker's default entry symbol): serve connection after connection.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    loop {
        serve(&mut Mailbox, SessionLimits::default());
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
