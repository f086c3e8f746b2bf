//! Graceful shutdown on SIGTERM and SIGINT, shared by the examples that run a server until
//! they are stopped (`echo`, `dashboard`), which include it with
//! `#[path = "common/shutdown.rs"] mod shutdown;` (this folder has no `main.rs`, so cargo does
//! not take it for an example of its own).
//!
//! Owns: turning the signals into [`Handle::shutdown`]. The first SIGTERM or SIGINT starts the
//! server's graceful shutdown (Close 1001 to every session, `on_close` for each, `run`
//! returns within the close timeout, so `main` returns and the process exits with 0). A
//! second one while that runs exits at once, with the status a shell gives a process killed
//! by that signal (128 + its number: 143 for SIGTERM, 130 for SIGINT), so an operator can
//! always force the stop. Must not: touch the server otherwise, or print to stdout (`echo`'s
//! output is read by scripts): it logs one INFO line.
//!
//! Why here and not in the library: the default build's dependency list is fixed, and a
//! process has one set of signal dispositions, which belongs to the application (it may have
//! other things to stop first). `Handle::shutdown` is callable from any thread, so these few
//! lines over the `signal-hook` crate are all an application needs; the README and the
//! `server` module page show the same code for users to copy.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use wsloop::server::Handle;

/// Install the handlers: from now on SIGTERM and SIGINT shut the server of `handle` down
/// gracefully, and a second one exits at once. Call it before announcing the address, so that
/// whoever reads the announcement can already stop the server cleanly.
pub fn on_signals(handle: Handle) -> io::Result<()> {
    let signalled = Arc::new(AtomicBool::new(false));
    for (signal, status) in [(SIGTERM, 143), (SIGINT, 130)] {
        // Registered first, so it runs first: when a signal has come before, exit now (in the
        // signal handler itself, so it works however busy the process is). Then the flag is set.
        flag::register_conditional_shutdown(signal, status, Arc::clone(&signalled))?;
        flag::register(signal, Arc::clone(&signalled))?;
    }
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                log::info!(
                    "{name}: shutting down gracefully (Close 1001 to every session); \
                     a second signal exits at once"
                );
                // Blocks until every loop has stopped; `run` returns on the main thread.
                handle.shutdown();
            }
        })?;
    Ok(())
}
