//! The JSON envelope: what travels on the Redis channels.
//!
//! Owns: the envelope's four shapes and their JSON, both ways. Must not: talk to Redis or to
//! the server; the bridge does both.
//!
//! ```json
//! {"type":"broadcast","text":"order 42"}
//! {"type":"broadcast","binary":"AAEC"}
//! {"type":"publish","topic":"shop-7","text":"order 42"}
//! {"type":"send","sid":"7f3a","text":"hello"}
//! {"type":"close","sid":"7f3a","code":4001,"reason":"logged out"}
//! ```
//!
//! | field | in | meaning |
//! |---|---|---|
//! | `type` | all | `broadcast`, `publish`, `send` or `close` |
//! | `text` | broadcast, publish, send | a text message (any JSON string) |
//! | `binary` | broadcast, publish, send | a binary message, standard base64 with padding; exactly one of `text` and `binary` |
//! | `topic` | publish | the topic: every instance hands the message to its sessions subscribed to it (any string, as for `Context::subscribe`) |
//! | `sid` | send, close | the session |
//! | `code` | close | the close code, one that may be sent (1000-1003, 1007-1014, 3000-4999); default 1000 |
//! | `reason` | close | the close reason, at most 123 bytes in UTF-8 (longer is cut); default empty |
//! | `origin` | broadcast, publish | optional: the instance that published it, which skips it (it has already delivered to its own sessions) |
//! | `session` | close | optional: close the sid only while it is still this session of its instance (how a replacement avoids closing a newer connection) |
//!
//! A `publish` goes on the events channel, like a broadcast: subscriptions stay with the
//! instance that holds the session (Redis keeps nothing per subscription), so every instance
//! gets every publish and delivers it to whichever of its sessions are subscribed, possibly
//! none. A publisher outside the cluster leaves `origin` out, and every instance delivers.
//!
//! Unknown fields are ignored, so a publisher may add its own (a trace id, say). The
//! envelope is parsed with `serde_json`'s untyped `Value`, not a derive: a handful of fields
//! do not justify a proc-macro in the build, and the errors stay ours.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use wsloop::{CloseCode, Message};

/// A command for the sessions, as published on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// Every session of every instance (but `origin`'s, if set).
    Broadcast {
        /// The message.
        message: Message,
        /// The publishing instance, which skips it; `None` from other publishers.
        origin: Option<String>,
    },
    /// Every session subscribed to `topic`, on every instance (but `origin`'s, if set).
    Publish {
        /// The topic.
        topic: String,
        /// The message.
        message: Message,
        /// The publishing instance, which skips it; `None` from other publishers.
        origin: Option<String>,
    },
    /// One session, wherever it is.
    Send {
        /// The session.
        sid: String,
        /// The message.
        message: Message,
    },
    /// Close one session, wherever it is.
    Close {
        /// The session.
        sid: String,
        /// The close code.
        code: CloseCode,
        /// The close reason.
        reason: String,
        /// Only this session number of the instance holding the sid (see the directory).
        session: Option<u64>,
    },
}

/// Why a payload is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError(String);

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a wsloop envelope: {}", self.0)
    }
}

impl std::error::Error for EnvelopeError {}

fn bad(why: impl Into<String>) -> EnvelopeError {
    EnvelopeError(why.into())
}

impl Envelope {
    /// A broadcast with no origin: what business code outside the cluster publishes.
    pub fn broadcast(message: impl Into<Message>) -> Envelope {
        Envelope::Broadcast {
            message: message.into(),
            origin: None,
        }
    }

    /// A message for a topic's subscribers on every instance, with no origin: what business
    /// code outside the cluster publishes.
    pub fn publish(topic: &str, message: impl Into<Message>) -> Envelope {
        Envelope::Publish {
            topic: topic.to_string(),
            message: message.into(),
            origin: None,
        }
    }

    /// A message for one session.
    pub fn send(sid: &str, message: impl Into<Message>) -> Envelope {
        Envelope::Send {
            sid: sid.to_string(),
            message: message.into(),
        }
    }

    /// The closing of one session.
    pub fn close(sid: &str, code: CloseCode, reason: &str) -> Envelope {
        Envelope::Close {
            sid: sid.to_string(),
            code,
            reason: reason.to_string(),
            session: None,
        }
    }

    /// The JSON text to `PUBLISH`.
    pub fn to_json(&self) -> String {
        let mut object = Map::new();
        let put_message = |object: &mut Map<String, Value>, message: &Message| match message {
            Message::Text(text) => object.insert("text".into(), json!(text)),
            Message::Binary(bytes) => object.insert("binary".into(), json!(BASE64.encode(bytes))),
        };
        match self {
            Envelope::Broadcast { message, origin } => {
                object.insert("type".into(), json!("broadcast"));
                put_message(&mut object, message);
                if let Some(origin) = origin {
                    object.insert("origin".into(), json!(origin));
                }
            }
            Envelope::Publish {
                topic,
                message,
                origin,
            } => {
                object.insert("type".into(), json!("publish"));
                object.insert("topic".into(), json!(topic));
                put_message(&mut object, message);
                if let Some(origin) = origin {
                    object.insert("origin".into(), json!(origin));
                }
            }
            Envelope::Send { sid, message } => {
                object.insert("type".into(), json!("send"));
                object.insert("sid".into(), json!(sid));
                put_message(&mut object, message);
            }
            Envelope::Close {
                sid,
                code,
                reason,
                session,
            } => {
                object.insert("type".into(), json!("close"));
                object.insert("sid".into(), json!(sid));
                object.insert("code".into(), json!(u16::from(*code)));
                object.insert("reason".into(), json!(reason));
                if let Some(session) = session {
                    object.insert("session".into(), json!(session));
                }
            }
        }
        Value::Object(object).to_string()
    }

    /// Parse a published payload.
    pub fn from_json(payload: &[u8]) -> Result<Envelope, EnvelopeError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| bad(format!("invalid JSON ({e})")))?;
        let Value::Object(object) = value else {
            return Err(bad("not a JSON object"));
        };
        let string = |name: &str| -> Result<Option<&str>, EnvelopeError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
            }
        };
        let required = |name: &str| -> Result<&str, EnvelopeError> {
            string(name)?.ok_or_else(|| bad(format!("\"{name}\" is missing")))
        };
        let message = || -> Result<Message, EnvelopeError> {
            match (string("text")?, string("binary")?) {
                (Some(text), None) => Ok(Message::Text(text.to_string())),
                (None, Some(b64)) => BASE64
                    .decode(b64)
                    .map(Message::Binary)
                    .map_err(|e| bad(format!("\"binary\" is not base64 ({e})"))),
                _ => Err(bad("exactly one of \"text\" and \"binary\" is needed")),
            }
        };
        match required("type")? {
            "broadcast" => Ok(Envelope::Broadcast {
                message: message()?,
                origin: string("origin")?.map(str::to_string),
            }),
            "publish" => Ok(Envelope::Publish {
                topic: required("topic")?.to_string(),
                message: message()?,
                origin: string("origin")?.map(str::to_string),
            }),
            "send" => Ok(Envelope::Send {
                sid: required("sid")?.to_string(),
                message: message()?,
            }),
            "close" => {
                let code = match object.get("code") {
                    None | Some(Value::Null) => CloseCode::NormalClosure,
                    Some(value) => {
                        let code = value
                            .as_u64()
                            .and_then(|n| u16::try_from(n).ok())
                            .map(CloseCode::from)
                            .filter(|code| code.is_sendable())
                            .ok_or_else(|| bad(format!("\"code\" {value} may not be sent")))?;
                        code
                    }
                };
                let session = match object.get("session") {
                    None | Some(Value::Null) => None,
                    Some(value) => Some(
                        value
                            .as_u64()
                            .ok_or_else(|| bad("\"session\" must be a number"))?,
                    ),
                };
                Ok(Envelope::Close {
                    sid: required("sid")?.to_string(),
                    code,
                    reason: string("reason")?.unwrap_or("").to_string(),
                    session,
                })
            }
            other => Err(bad(format!("unknown type {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(envelope: Envelope) {
        let json = envelope.to_json();
        assert_eq!(Envelope::from_json(json.as_bytes()), Ok(envelope), "{json}");
    }

    #[test]
    fn every_shape_round_trips() {
        round_trip(Envelope::broadcast("order 42"));
        round_trip(Envelope::Broadcast {
            message: Message::Binary(vec![0, 1, 2, 255]),
            origin: Some("host-1".into()),
        });
        round_trip(Envelope::publish("shop-7", "order 42"));
        round_trip(Envelope::Publish {
            topic: "room \"ü\" / 1".into(),
            message: Message::Binary(vec![0, 255]),
            origin: Some("host-2".into()),
        });
        round_trip(Envelope::publish("", Message::Binary(Vec::new())));
        round_trip(Envelope::send("7f3a", "hello \"you\" 订单"));
        round_trip(Envelope::send("7f3a", Message::Binary(Vec::new())));
        round_trip(Envelope::close("7f3a", CloseCode::Private(4001), "bye"));
        round_trip(Envelope::Close {
            sid: "x".into(),
            code: CloseCode::Private(4000),
            reason: "replaced".into(),
            session: Some(7),
        });
    }

    #[test]
    fn the_documented_examples_parse() {
        assert_eq!(
            Envelope::from_json(br#"{"type":"broadcast","text":"order 42"}"#),
            Ok(Envelope::broadcast("order 42"))
        );
        assert_eq!(
            Envelope::from_json(br#"{"type":"broadcast","binary":"AAEC"}"#),
            Ok(Envelope::broadcast(Message::Binary(vec![0, 1, 2])))
        );
        assert_eq!(
            Envelope::from_json(br#"{"type":"publish","topic":"shop-7","text":"order 42"}"#),
            Ok(Envelope::publish("shop-7", "order 42"))
        );
        assert_eq!(
            Envelope::from_json(
                br#"{"type":"publish","topic":"shop-7","binary":"AAEC","origin":"b","trace":1}"#
            ),
            Ok(Envelope::Publish {
                topic: "shop-7".into(),
                message: Message::Binary(vec![0, 1, 2]),
                origin: Some("b".into()),
            })
        );
        assert_eq!(
            Envelope::from_json(br#"{"type":"send","sid":"7f3a","text":"hello","trace":1}"#),
            Ok(Envelope::send("7f3a", "hello"))
        );
        assert_eq!(
            Envelope::from_json(br#"{"type":"close","sid":"7f3a"}"#),
            Ok(Envelope::close("7f3a", CloseCode::NormalClosure, ""))
        );
    }

    #[test]
    fn malformed_envelopes_are_refused_with_a_reason() {
        for (payload, why) in [
            (&b"order 42"[..], "invalid JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"text":"x"}"#, "\"type\" is missing"),
            (br#"{"type":"shout","text":"x"}"#, "unknown type"),
            (br#"{"type":"broadcast"}"#, "exactly one"),
            (
                br#"{"type":"broadcast","text":"x","binary":"AA=="}"#,
                "exactly one",
            ),
            (br#"{"type":"broadcast","binary":"%%"}"#, "not base64"),
            (br#"{"type":"publish","text":"x"}"#, "\"topic\" is missing"),
            (
                br#"{"type":"publish","topic":7,"text":"x"}"#,
                "\"topic\" must be a string",
            ),
            (br#"{"type":"publish","topic":"t"}"#, "exactly one"),
            (
                br#"{"type":"publish","topic":"t","binary":"%%"}"#,
                "not base64",
            ),
            (
                br#"{"type":"publish","topic":"t","text":"x","origin":1}"#,
                "\"origin\" must be a string",
            ),
            (br#"{"type":"send","text":"x"}"#, "\"sid\" is missing"),
            (br#"{"type":"send","sid":7,"text":"x"}"#, "must be a string"),
            (
                br#"{"type":"close","sid":"x","code":1006}"#,
                "may not be sent",
            ),
            (
                br#"{"type":"close","sid":"x","code":70000}"#,
                "may not be sent",
            ),
            (
                br#"{"type":"close","sid":"x","session":"7"}"#,
                "must be a number",
            ),
        ] {
            let error = Envelope::from_json(payload).unwrap_err().to_string();
            assert!(error.contains(why), "{error} for {payload:?}");
        }
    }
}
