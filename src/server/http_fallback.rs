//! The loop's plain-HTTP fallback: a request that is not an upgrade is read with its body
//! (by `Content-Length`, up to `max_http_body`) and answered by `Handler::on_request`; the
//! connection closes after the answer.
//!
//! Owns: the `HttpBody` phase and queueing a final answer ([`Core::respond`], also used to
//! refuse an upgrade). Must not: build the bytes of an answer (`http.rs` does) or write to
//! the socket (`output.rs` flushes).

use crate::handshake::Request;

use super::connection::Phase;
use super::core::Core;
use super::handler::{Context, Handler};
use super::http::{status_response, HttpRequest};
use super::transport::Reactor;

impl<R: Reactor> Core<R> {
    pub(super) fn start_http<H: Handler>(
        &mut self,
        handler: &mut H,
        key: usize,
        request: Request,
        rest: &[u8],
    ) {
        // Bodies are read by Content-Length only; chunked uploads are not for this server.
        if request.header("transfer-encoding").is_some() {
            return self.respond(key, status_response(411));
        }
        let need = match request.header("content-length") {
            None => 0,
            Some(_) => match request.content_length() {
                Some(n) => n,
                // RFC 9112 §6.3 item 5: an invalid Content-Length (not 1*DIGIT, or several
                // that differ) is unrecoverable: 400, and the connection closes after it.
                None => {
                    log::info!(
                        "bad request from {}: invalid Content-Length",
                        self.conns[key].peer
                    );
                    return self.respond(key, status_response(400));
                }
            },
        };
        if need > self.config.max_http_body {
            return self.respond(key, status_response(413));
        }
        let body = rest[..need.min(rest.len())].to_vec();
        let complete = body.len() == need;
        self.conns[key].phase = Phase::HttpBody { request, body };
        if complete {
            self.finish_http(handler, key);
        }
    }

    pub(super) fn finish_http<H: Handler>(&mut self, handler: &mut H, key: usize) {
        let conn = &mut self.conns[key];
        let Phase::HttpBody { request, body } = std::mem::replace(&mut conn.phase, Phase::Done)
        else {
            return;
        };
        let request = HttpRequest {
            head: request,
            body,
        };
        let peer = conn.peer;
        let response = handler.on_request(&mut Context::new(self), &request);
        log::info!(
            "{} {} from {peer}: {}",
            request.method().escape_debug(),
            request.head.path().escape_debug(),
            response.status
        );
        let mut bytes = response.to_bytes();
        // RFC 9110 §9.3.2: the answer to HEAD is the GET answer's head (its Content-Length
        // included, §8.6) without the content.
        if request.method() == "HEAD" {
            let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
            bytes.truncate(head_end.map_or(bytes.len(), |end| end + 4));
        }
        self.respond(key, bytes);
    }

    /// Queue a final HTTP answer; the connection closes once it is written.
    pub(super) fn respond(&mut self, key: usize, bytes: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.queue.push_copy(&bytes);
            conn.phase = Phase::Done;
            conn.closing_since = Some(self.now);
            self.touch(key);
        }
    }
}
