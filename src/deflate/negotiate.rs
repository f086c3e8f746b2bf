//! Negotiating permessage-deflate (RFC 7692 §5, §7.1) in `Sec-WebSocket-Extensions`.
//!
//! Owns: reading the header's grammar (RFC 6455 §9.1), a server's answer to a client's offers
//! ([`answer`]), a client's offer ([`offer`]) and its check of the server's answer
//! ([`check_response`]). Each ends in a [`Negotiated`], the parameters both ends then use.
//! Must not: read HTTP heads (the handshake hands over the header values), compress, or
//! touch a session or a socket.
//!
//! How it goes (RFC 7692 §5): the client offers one or more parameter sets, in its order of
//! preference; the server accepts at most one of them and answers with the parameters that
//! now apply, or leaves the header out to decline them all. The four parameters (§7.1):
//!
//! | parameter | in an offer | in an answer |
//! |---|---|---|
//! | `server_no_context_takeover` | "server, reset your compressor after every message" | "I will" |
//! | `client_no_context_takeover` | "I, the client, can reset mine" (a hint) | "client, reset yours" |
//! | `server_max_window_bits=N` | "server, use a window of at most 2^N bytes" | "I will use at most 2^N" |
//! | `client_max_window_bits[=N]` | "you may limit my window (and I use at most 2^N)" | "client, use at most 2^N" |
//!
//! A window-bits value is a decimal from 8 to 15 without leading zeros; absent means 15.
//!
//! ```
//! use wsloop::deflate::{negotiate, DeflateConfig};
//! let config = DeflateConfig::default();
//! // What Chrome offers:
//! let (agreed, header) = negotiate::answer(["permessage-deflate; client_max_window_bits"], &config)
//!     .expect("accepted");
//! assert_eq!(header, "permessage-deflate");
//! assert_eq!(agreed.client_max_window_bits, 15);
//! ```

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{DeflateConfig, Negotiated, EXTENSION_NAME};

/// RFC 7692 §7.1.1.1.
const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
/// RFC 7692 §7.1.1.2.
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
/// RFC 7692 §7.1.2.1.
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
/// RFC 7692 §7.1.2.2.
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// Every parameter permessage-deflate defines, for offers and answers alike (§7.1).
const PARAMETERS: [&str; 4] = [
    SERVER_NO_CONTEXT_TAKEOVER,
    CLIENT_NO_CONTEXT_TAKEOVER,
    SERVER_MAX_WINDOW_BITS,
    CLIENT_MAX_WINDOW_BITS,
];

/// The window bits meant when a `*_max_window_bits` parameter is absent (§7.1.2).
const DEFAULT_WINDOW_BITS: u8 = 15;

// ----- The header's grammar (RFC 6455 §9.1) ------------------------------------------------

/// One element of a `Sec-WebSocket-Extensions` list: `name; param; param=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension's name, e.g. `permessage-deflate`.
    pub name: &'a str,
    /// Its parameters, in the order given.
    pub params: Vec<Param<'a>>,
}

/// One parameter of an [`Extension`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// The parameter's name.
    pub name: &'a str,
    /// Its value with any quoting removed; `None` for a parameter given without `=`.
    pub value: Option<Cow<'a, str>>,
}

/// Parse one `Sec-WebSocket-Extensions` value (RFC 6455 §9.1):
///
/// ```text
/// extension-list  = 1#extension
/// extension       = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// Whitespace is allowed around `,`, `;` and `=`; empty list elements (`a, , b`) are skipped
/// (RFC 9110 §5.6.1).
pub fn parse(value: &str) -> Result<Vec<Extension<'_>>, NegotiationError> {
    let mut cursor = Cursor {
        text: value,
        pos: 0,
    };
    let mut extensions = Vec::new();
    loop {
        cursor.skip_whitespace();
        if cursor.at_end() {
            return Ok(extensions);
        }
        // RFC 9110 §5.6.1: a recipient ignores empty list elements.
        if cursor.eat(b',') {
            continue;
        }
        extensions.push(extension(&mut cursor)?);
        cursor.skip_whitespace();
        if !cursor.at_end() && !cursor.eat(b',') {
            return Err(NegotiationError::Malformed("expected ',' or ';'"));
        }
    }
}

/// Parse every value of a header that may appear several times: RFC 9110 §5.3 makes them
/// one list, in order.
pub fn parse_all<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Extension<'a>>, NegotiationError> {
    let mut extensions = Vec::new();
    for value in values {
        extensions.extend(parse(value)?);
    }
    Ok(extensions)
}

/// `extension-token *( ";" extension-param )`, the cursor at the token.
fn extension<'a>(cursor: &mut Cursor<'a>) -> Result<Extension<'a>, NegotiationError> {
    let name = cursor.token()?;
    let mut params = Vec::new();
    while cursor.eat(b';') {
        cursor.skip_whitespace();
        let name = cursor.token()?;
        let value = if cursor.eat(b'=') {
            cursor.skip_whitespace();
            Some(cursor.value()?)
        } else {
            None
        };
        params.push(Param { name, value });
    }
    Ok(Extension { name, params })
}

/// RFC 9110 §5.6.2: `tchar`, the characters of a token.
fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A position in the header value being parsed.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos == self.text.len()
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// RFC 9110 §5.6.3: optional whitespace is spaces and tabs.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Skip whitespace, then take `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `token = 1*tchar`.
    fn token(&mut self) -> Result<&'a str, NegotiationError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(NegotiationError::Malformed("expected a token"));
        }
        Ok(&self.text[start..self.pos])
    }

    /// A parameter's value: a token or a quoted string.
    fn value(&mut self) -> Result<Cow<'a, str>, NegotiationError> {
        if self.peek() == Some(b'"') {
            self.quoted()
        } else {
            self.token().map(Cow::Borrowed)
        }
    }

    /// `quoted-string`, the cursor at the opening quote. RFC 6455 §9.1: once unescaped, the
    /// value MUST be a token, so only token characters and `\`-escaped token characters are
    /// accepted inside the quotes.
    fn quoted(&mut self) -> Result<Cow<'a, str>, NegotiationError> {
        self.pos += 1; // the opening quote
        let start = self.pos;
        let mut escaped = false;
        loop {
            match self.peek() {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    if !self.peek().is_some_and(is_token_char) {
                        return Err(NegotiationError::Malformed("quoted value is not a token"));
                    }
                    self.pos += 1;
                }
                Some(byte) if is_token_char(byte) => self.pos += 1,
                Some(_) => return Err(NegotiationError::Malformed("quoted value is not a token")),
                None => return Err(NegotiationError::Malformed("unterminated quoted string")),
            }
        }
        let inside = &self.text[start..self.pos];
        self.pos += 1; // the closing quote
        if inside.is_empty() {
            return Err(NegotiationError::Malformed("quoted value is not a token"));
        }
        Ok(if escaped {
            Cow::Owned(inside.replace('\\', ""))
        } else {
            Cow::Borrowed(inside)
        })
    }
}

// ----- permessage-deflate's parameters (RFC 7692 §7.1) ---------------------------------------

/// `client_max_window_bits`, the one parameter whose value is optional (§7.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientWindow {
    Absent,
    /// Present without a value: an offer saying "you may limit my window".
    NoValue,
    Bits(u8),
}

/// The parameters of one offer or answer, each checked on its own.
#[derive(Debug, Clone, Copy)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindow,
}

/// Read the parameters of one permessage-deflate element, rejecting what both an offer and an
/// answer must not contain (§7.1: a server declines such an offer, a client fails on such an
/// answer).
fn read_params(params: &[Param<'_>]) -> Result<Params, NegotiationError> {
    let mut read = Params {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: ClientWindow::Absent,
    };
    let mut seen = [false; PARAMETERS.len()];
    for param in params {
        // RFC 7692 §7.1: a parameter not defined for this extension.
        let Some(index) = PARAMETERS
            .iter()
            .position(|known| known.eq_ignore_ascii_case(param.name))
        else {
            return Err(NegotiationError::UnknownParameter(param.name.into()));
        };
        let name = PARAMETERS[index];
        // RFC 7692 §7.1: multiple parameters with the same name.
        if seen[index] {
            return Err(NegotiationError::DuplicateParameter(name));
        }
        seen[index] = true;
        let value = param.value.as_deref();
        match name {
            SERVER_NO_CONTEXT_TAKEOVER => {
                no_value(name, value)?;
                read.server_no_context_takeover = true;
            }
            CLIENT_NO_CONTEXT_TAKEOVER => {
                no_value(name, value)?;
                read.client_no_context_takeover = true;
            }
            SERVER_MAX_WINDOW_BITS => {
                // RFC 7692 §7.1.2.1: this parameter always has a value.
                let value = value.ok_or(NegotiationError::MissingValue(name))?;
                read.server_max_window_bits = Some(window_bits(name, value)?);
            }
            // The one name left, CLIENT_MAX_WINDOW_BITS.
            _ => {
                // RFC 7692 §7.1.2.2: "no value or a decimal integer value".
                read.client_max_window_bits = match value {
                    None => ClientWindow::NoValue,
                    Some(value) => ClientWindow::Bits(window_bits(name, value)?),
                };
            }
        }
    }
    Ok(read)
}

/// RFC 7692 §7.1.1.1, §7.1.1.2: the `*_no_context_takeover` parameters have no value.
fn no_value(name: &'static str, value: Option<&str>) -> Result<(), NegotiationError> {
    match value {
        None => Ok(()),
        Some(_) => Err(NegotiationError::UnexpectedValue(name)),
    }
}

/// RFC 7692 §7.1.2.1, §7.1.2.2: a window-bits value is `1*DIGIT`, "a decimal integer value
/// without leading zeroes between 8 to 15, inclusive" (already unquoted by the parser).
fn window_bits(name: &'static str, value: &str) -> Result<u8, NegotiationError> {
    let decimal = value.bytes().all(|b| b.is_ascii_digit()) && !value.starts_with('0');
    match value.parse::<u8>() {
        Ok(bits @ 8..=15) if decimal => Ok(bits),
        _ => Err(NegotiationError::InvalidWindowBits {
            parameter: name,
            value: value.into(),
        }),
    }
}

/// A configured window size, kept within the range the RFC allows (§7.1.2).
fn config_bits(bits: u8) -> u8 {
    bits.clamp(8, 15)
}

/// Append `; name` or `; name=bits` to a header value being built.
fn push_param(header: &mut String, name: &str, bits: Option<u8>) {
    use core::fmt::Write as _;
    let _ = match bits {
        Some(bits) => write!(header, "; {name}={bits}"),
        None => write!(header, "; {name}"),
    };
}

// ----- The server's side ---------------------------------------------------------------------

/// The server's answer to a client's `Sec-WebSocket-Extensions` (every value of the header,
/// in order): the first permessage-deflate offer that `config` can honour, as the agreed
/// parameters and the header value to send back; `None` to decline them all (the `101` then
/// carries no extension header, and the connection is not compressed).
///
/// A header that is not valid RFC 6455 §9.1 grammar declines every offer: the handshake
/// still succeeds, without compression (logged at debug level).
pub fn answer<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<(Negotiated, String)> {
    let extensions = match parse_all(header_values) {
        Ok(extensions) => extensions,
        Err(e) => {
            log::debug!("Sec-WebSocket-Extensions not understood ({e}); no extension accepted");
            return None;
        }
    };
    // RFC 7692 §5.1: the offers come in the client's order of preference; accept the first
    // one we can.
    let offers = extensions
        .iter()
        .filter(|e| e.name.eq_ignore_ascii_case(EXTENSION_NAME));
    for offer in offers {
        match accept_offer(offer, config) {
            Ok(accepted) => return Some(accepted),
            Err(e) => log::debug!("permessage-deflate offer declined: {e}"),
        }
    }
    None
}

/// Accept one offer, or say why it must be declined (RFC 7692 §7.1).
fn accept_offer(
    offer: &Extension<'_>,
    config: &DeflateConfig,
) -> Result<(Negotiated, String), NegotiationError> {
    // RFC 7692 §7.1: decline an offer with an unknown, duplicated or invalid parameter.
    let offered = read_params(&offer.params)?;
    let mut response = String::from(EXTENSION_NAME);

    // RFC 7692 §7.1.1.1: a server accepting an offer with server_no_context_takeover MUST
    // include it in the answer; it MAY include it when the offer did not ask.
    let server_no_context_takeover =
        offered.server_no_context_takeover || config.server_no_context_takeover;
    if server_no_context_takeover {
        push_param(&mut response, SERVER_NO_CONTEXT_TAKEOVER, None);
    }

    // RFC 7692 §7.1.1.2: a server MAY ask the client not to take over context; an offer with
    // the parameter is a hint that the client can, so we ask then too (it saves our memory).
    let client_no_context_takeover =
        offered.client_no_context_takeover || config.client_no_context_takeover;
    if client_no_context_takeover {
        push_param(&mut response, CLIENT_NO_CONTEXT_TAKEOVER, None);
    }

    // RFC 7692 §7.1.2.1: an offer with server_max_window_bits=N is accepted by answering it
    // with the same or a smaller value; without it, the server MAY still announce a smaller
    // window than 15.
    let ours = config_bits(config.server_max_window_bits);
    let server_max_window_bits = match offered.server_max_window_bits {
        Some(asked) => {
            let bits = asked.min(ours);
            push_param(&mut response, SERVER_MAX_WINDOW_BITS, Some(bits));
            bits
        }
        None if ours < DEFAULT_WINDOW_BITS => {
            push_param(&mut response, SERVER_MAX_WINDOW_BITS, Some(ours));
            ours
        }
        None => DEFAULT_WINDOW_BITS,
    };

    // RFC 7692 §7.1.2.2: only an offer with client_max_window_bits lets the answer limit the
    // client's window, to at most the offered value; without it the answer MUST NOT carry the
    // parameter and the client may use 15 bits whatever we would prefer.
    let wanted = config_bits(config.client_max_window_bits);
    let client_max_window_bits = match offered.client_max_window_bits {
        ClientWindow::Absent => DEFAULT_WINDOW_BITS,
        ClientWindow::NoValue if wanted == DEFAULT_WINDOW_BITS => DEFAULT_WINDOW_BITS,
        ClientWindow::NoValue => {
            push_param(&mut response, CLIENT_MAX_WINDOW_BITS, Some(wanted));
            wanted
        }
        ClientWindow::Bits(limit) => {
            // The client will not go over its own value anyway; saying it keeps both ends'
            // view of the window the same.
            let bits = limit.min(wanted);
            push_param(&mut response, CLIENT_MAX_WINDOW_BITS, Some(bits));
            bits
        }
    };

    let negotiated = Negotiated {
        server_no_context_takeover,
        client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    };
    Ok((negotiated, response))
}

// ----- The client's side ---------------------------------------------------------------------

/// The client's `Sec-WebSocket-Extensions` offer for `config`: one permessage-deflate offer.
///
/// It always carries `client_max_window_bits` (RFC 7692 §7.1.2.2), bare or with our limit:
/// without it a server may not answer with a window limit for us, and some servers then
/// decline the offer rather than accept a 32 KiB window.
pub fn offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    // RFC 7692 §7.1.1.1: ask the server to reset its compressor after each message.
    if config.server_no_context_takeover {
        push_param(&mut offer, SERVER_NO_CONTEXT_TAKEOVER, None);
    }
    // RFC 7692 §7.1.1.2: tell the server we will not take over context (a hint).
    if config.client_no_context_takeover {
        push_param(&mut offer, CLIENT_NO_CONTEXT_TAKEOVER, None);
    }
    // RFC 7692 §7.1.2.1: ask the server for a smaller window than the default 15.
    let server_bits = config_bits(config.server_max_window_bits);
    if server_bits < DEFAULT_WINDOW_BITS {
        push_param(&mut offer, SERVER_MAX_WINDOW_BITS, Some(server_bits));
    }
    // RFC 7692 §7.1.2.2: bare means "you may limit my window"; a value also says our limit.
    let client_bits = config_bits(config.client_max_window_bits);
    let value = (client_bits < DEFAULT_WINDOW_BITS).then_some(client_bits);
    push_param(&mut offer, CLIENT_MAX_WINDOW_BITS, value);
    offer
}

/// Check the server's `Sec-WebSocket-Extensions` answer to our [`offer`] for `config` (every
/// value of the header, joined with `,`). An error means the client must fail the connection
/// (RFC 7692 §7.1); a server that declined our offer sends no header at all, which the caller
/// handles before this.
pub fn check_response(value: &str, config: &DeflateConfig) -> Result<Negotiated, NegotiationError> {
    let extensions = parse(value)?;
    // RFC 6455 §9.1: the server may only select extensions we offered, and we offered one.
    let answer = match extensions.as_slice() {
        [one] => one,
        more => return Err(NegotiationError::ExpectedOneExtension(more.len())),
    };
    if !answer.name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return Err(NegotiationError::UnrequestedExtension(answer.name.into()));
    }
    // RFC 7692 §7.1: fail on an unknown, duplicated or invalid parameter.
    let answered = read_params(&answer.params)?;

    // RFC 7692 §7.1.1.1: a server accepting server_no_context_takeover MUST include it.
    if config.server_no_context_takeover && !answered.server_no_context_takeover {
        return Err(NegotiationError::MissingServerNoContextTakeover);
    }

    // RFC 7692 §7.1.2.1: the server may announce a window whether we asked or not, but never
    // a larger one than we asked for (an absent parameter means 15).
    let asked = config_bits(config.server_max_window_bits);
    let server_max_window_bits = answered
        .server_max_window_bits
        .unwrap_or(DEFAULT_WINDOW_BITS);
    if server_max_window_bits > asked {
        return Err(NegotiationError::WindowTooLarge {
            parameter: SERVER_MAX_WINDOW_BITS,
            offered: asked,
            answered: server_max_window_bits,
        });
    }

    // RFC 7692 §7.1.2.2: in an answer, client_max_window_bits has a value, no larger than the
    // one we offered (15 for our bare offer). Absent, we keep to the limit we offered.
    let ours = config_bits(config.client_max_window_bits);
    let client_max_window_bits = match answered.client_max_window_bits {
        ClientWindow::Absent => ours,
        ClientWindow::NoValue => {
            return Err(NegotiationError::MissingValue(CLIENT_MAX_WINDOW_BITS))
        }
        ClientWindow::Bits(bits) if bits <= ours => bits,
        ClientWindow::Bits(bits) => {
            return Err(NegotiationError::WindowTooLarge {
                parameter: CLIENT_MAX_WINDOW_BITS,
                offered: ours,
                answered: bits,
            })
        }
    };

    Ok(Negotiated {
        server_no_context_takeover: answered.server_no_context_takeover,
        // RFC 7692 §7.1.1.2: the server may ask this whether or not we hinted at it.
        client_no_context_takeover: answered.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// [`check_response`] for the offer as sent: the client's handshake keeps the header value
/// of its [`offer`], and the parameters it asked for are read back from it.
pub(crate) fn check_answer(offer: &str, answer: &str) -> Result<Negotiated, NegotiationError> {
    let offered = match parse(offer)?.as_slice() {
        [one] => read_params(&one.params)?,
        more => return Err(NegotiationError::ExpectedOneExtension(more.len())),
    };
    let config = DeflateConfig {
        server_no_context_takeover: offered.server_no_context_takeover,
        client_no_context_takeover: offered.client_no_context_takeover,
        server_max_window_bits: offered
            .server_max_window_bits
            .unwrap_or(DEFAULT_WINDOW_BITS),
        client_max_window_bits: match offered.client_max_window_bits {
            ClientWindow::Bits(bits) => bits,
            ClientWindow::Absent | ClientWindow::NoValue => DEFAULT_WINDOW_BITS,
        },
        ..DeflateConfig::default()
    };
    check_response(answer, &config)
}

// ----- Errors --------------------------------------------------------------------------------

/// Why an offer was declined (server) or an answer refused (client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationError {
    /// The header does not follow the grammar of RFC 6455 §9.1; what was expected.
    Malformed(&'static str),
    /// RFC 6455 §9.1: the answer names this many extensions; we offered exactly one.
    ExpectedOneExtension(usize),
    /// RFC 6455 §9.1: the answer names an extension we did not offer.
    UnrequestedExtension(String),
    /// RFC 7692 §7.1: a parameter permessage-deflate does not define.
    UnknownParameter(String),
    /// RFC 7692 §7.1: the same parameter twice.
    DuplicateParameter(&'static str),
    /// RFC 7692 §7.1.1: a value on a parameter that takes none.
    UnexpectedValue(&'static str),
    /// RFC 7692 §7.1.2: a window-bits parameter without the value it needs here.
    MissingValue(&'static str),
    /// RFC 7692 §7.1.2: window bits that are not a decimal from 8 to 15 without leading zeros.
    InvalidWindowBits {
        /// The parameter.
        parameter: &'static str,
        /// The value it had.
        value: String,
    },
    /// RFC 7692 §7.1.1.1: we asked for `server_no_context_takeover` and the answer lacks it.
    MissingServerNoContextTakeover,
    /// RFC 7692 §7.1.2: the answer allows a larger window than we offered.
    WindowTooLarge {
        /// The parameter.
        parameter: &'static str,
        /// The largest value we offered (15 when we offered none).
        offered: u8,
        /// The value in the answer.
        answered: u8,
    },
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NegotiationError::Malformed(expected) => {
                write!(f, "malformed Sec-WebSocket-Extensions: {expected}")
            }
            NegotiationError::ExpectedOneExtension(n) => {
                write!(f, "the answer names {n} extensions, not the one offered")
            }
            NegotiationError::UnrequestedExtension(name) => {
                write!(
                    f,
                    "the answer names extension {name:?}, which was not offered"
                )
            }
            NegotiationError::UnknownParameter(name) => {
                write!(f, "unknown permessage-deflate parameter {name:?}")
            }
            NegotiationError::DuplicateParameter(name) => write!(f, "{name} given twice"),
            NegotiationError::UnexpectedValue(name) => write!(f, "{name} takes no value"),
            NegotiationError::MissingValue(name) => write!(f, "{name} needs a value"),
            NegotiationError::InvalidWindowBits { parameter, value } => {
                write!(f, "{parameter}={value:?} is not a number from 8 to 15")
            }
            NegotiationError::MissingServerNoContextTakeover => {
                f.write_str("server_no_context_takeover was asked for but not accepted")
            }
            NegotiationError::WindowTooLarge {
                parameter,
                offered,
                answered,
            } => write!(
                f,
                "{parameter}={answered} is larger than the {offered} offered"
            ),
        }
    }
}

impl std::error::Error for NegotiationError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn default_config() -> DeflateConfig {
        DeflateConfig::default()
    }

    /// Every parameter set: no context takeover either way, 2^9-byte windows.
    fn strict_config() -> DeflateConfig {
        DeflateConfig {
            server_max_window_bits: 9,
            client_max_window_bits: 9,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        }
    }

    fn answer_one(offer: &str, config: &DeflateConfig) -> Option<(Negotiated, String)> {
        answer([offer], config)
    }

    fn negotiated(
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
        server_max_window_bits: u8,
        client_max_window_bits: u8,
    ) -> Negotiated {
        Negotiated {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
        }
    }

    // ----- Grammar -----

    #[test]
    fn parses_extensions_params_and_values() {
        let parsed =
            parse("permessage-deflate; client_max_window_bits, x-foo;a=1;b=\"2\"").unwrap();
        assert_eq!(
            parsed,
            vec![
                Extension {
                    name: "permessage-deflate",
                    params: vec![Param {
                        name: "client_max_window_bits",
                        value: None
                    }],
                },
                Extension {
                    name: "x-foo",
                    params: vec![
                        Param {
                            name: "a",
                            value: Some("1".into())
                        },
                        Param {
                            name: "b",
                            value: Some("2".into())
                        },
                    ],
                },
            ]
        );
    }

    #[test]
    fn whitespace_around_separators_and_empty_elements_are_allowed() {
        let parsed = parse(" ,permessage-deflate \t;\tserver_max_window_bits = 10 ,, x ,").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].params[0].value.as_deref(), Some("10"));
        assert_eq!(parsed[1].name, "x");
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("  ").unwrap(), vec![]);
    }

    #[test]
    fn quoted_values_are_unquoted_and_unescaped() {
        let parsed = parse(r#"e; a="10"; b="1\5""#).unwrap();
        assert_eq!(parsed[0].params[0].value.as_deref(), Some("10"));
        assert!(matches!(parsed[0].params[0].value, Some(Cow::Borrowed(_))));
        assert_eq!(parsed[0].params[1].value.as_deref(), Some("15"));
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            ";",
            "permessage-deflate;",
            "permessage-deflate; =10",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"10",
            "permessage-deflate; a=\"\"",
            "permessage-deflate; a=\"1 0\"",
            "permessage-deflate; a=\"1\\ \"",
            "permessage-deflate a",
            "permessage-deflate; a b",
            "permessage deflate",
            "permessage-deflate; a=1=2",
            "per/message",
            "é",
            "\"permessage-deflate\"",
        ] {
            assert!(
                matches!(parse(bad), Err(NegotiationError::Malformed(_))),
                "{bad:?}: {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn several_header_values_are_one_list_in_order() {
        let parsed = parse_all(["a; x", "b", " , c"]).unwrap();
        let names: Vec<&str> = parsed.iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(parse_all(["a", "b;"]).is_err());
    }

    #[test]
    fn window_bits_values() {
        for good in ["8", "9", "10", "15"] {
            assert!(window_bits(SERVER_MAX_WINDOW_BITS, good).is_ok(), "{good}");
        }
        for bad in [
            "7", "16", "08", "010", "+9", "-9", "9.0", "0x9", "", "256", "1000",
        ] {
            assert!(window_bits(SERVER_MAX_WINDOW_BITS, bad).is_err(), "{bad}");
        }
    }

    // ----- Server: what browsers and Autobahn offer -----

    #[test]
    fn chrome_offer() {
        let (agreed, header) = answer_one(
            "permessage-deflate; client_max_window_bits",
            &default_config(),
        )
        .unwrap();
        assert_eq!(header, "permessage-deflate");
        assert_eq!(agreed, Negotiated::default());
    }

    #[test]
    fn firefox_offer() {
        let (agreed, header) = answer_one("permessage-deflate", &default_config()).unwrap();
        assert_eq!(header, "permessage-deflate");
        assert_eq!(agreed, Negotiated::default());
    }

    #[test]
    fn autobahn_13_1_default_offer() {
        let (agreed, header) = answer_one(
            "permessage-deflate; client_max_window_bits",
            &default_config(),
        )
        .unwrap();
        assert_eq!(
            (agreed, header.as_str()),
            (Negotiated::default(), "permessage-deflate")
        );
        // autobahn-python's PerMessageDeflateOffer() also hints client_no_context_takeover.
        let (agreed, header) = answer_one(
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
            &default_config(),
        )
        .unwrap();
        assert_eq!(header, "permessage-deflate; client_no_context_takeover");
        assert_eq!(agreed, negotiated(false, true, 15, 15));
    }

    #[test]
    fn autobahn_13_2_no_context_takeover() {
        let (agreed, header) = answer_one(
            "permessage-deflate; client_max_window_bits; server_no_context_takeover",
            &default_config(),
        )
        .unwrap();
        assert_eq!(header, "permessage-deflate; server_no_context_takeover");
        assert_eq!(agreed, negotiated(true, false, 15, 15));
    }

    #[test]
    fn autobahn_13_3_and_13_4_window_bits() {
        for (bits, expected) in [(8, "8"), (9, "9"), (15, "15")] {
            let offer = format!(
                "permessage-deflate; client_max_window_bits; server_max_window_bits={bits}"
            );
            let (agreed, header) = answer_one(&offer, &default_config()).unwrap();
            assert_eq!(
                header,
                format!("permessage-deflate; server_max_window_bits={expected}")
            );
            assert_eq!(agreed, negotiated(false, false, bits, 15));
        }
    }

    #[test]
    fn autobahn_13_5_and_13_6_both() {
        for bits in [9, 15] {
            let offer = format!(
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; \
                 server_max_window_bits={bits}"
            );
            let (agreed, header) = answer_one(&offer, &default_config()).unwrap();
            assert_eq!(
                header,
                format!(
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits={bits}"
                )
            );
            assert_eq!(agreed, negotiated(true, false, bits, 15));
        }
    }

    /// The offers exactly as the fuzzing client (kosoku, like autobahn-python) sends them:
    /// each also hints `client_no_context_takeover`, which we then ask for.
    #[test]
    fn fuzzing_client_offers_verbatim() {
        let cases = [
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
                "permessage-deflate; client_no_context_takeover",
                negotiated(false, true, 15, 15),
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                 server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                negotiated(true, true, 15, 15),
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                 server_max_window_bits=9",
                "permessage-deflate; client_no_context_takeover; server_max_window_bits=9",
                negotiated(false, true, 9, 15),
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
                 server_no_context_takeover; server_max_window_bits=9, permessage-deflate; \
                 client_no_context_takeover; client_max_window_bits; server_no_context_takeover, \
                 permessage-deflate; client_no_context_takeover; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9",
                negotiated(true, true, 9, 15),
            ),
        ];
        for (offer, header, agreed) in cases {
            assert_eq!(
                answer_one(offer, &default_config()),
                Some((agreed, header.into())),
                "{offer}"
            );
        }
    }

    #[test]
    fn autobahn_13_7_three_offers_in_one_header_first_wins() {
        let offers = "permessage-deflate; client_max_window_bits; server_no_context_takeover; \
                      server_max_window_bits=9, permessage-deflate; client_max_window_bits; \
                      server_no_context_takeover, permessage-deflate; client_max_window_bits";
        let (agreed, header) = answer_one(offers, &default_config()).unwrap();
        assert_eq!(
            header,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        assert_eq!(agreed, negotiated(true, false, 9, 15));
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let offers = "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7, \
                      permessage-deflate; mystery, permessage-deflate; server_max_window_bits=12, \
                      permessage-deflate";
        let (agreed, header) = answer_one(offers, &default_config()).unwrap();
        assert_eq!(header, "permessage-deflate; server_max_window_bits=12");
        assert_eq!(agreed.server_max_window_bits, 12);
    }

    #[test]
    fn offers_across_several_headers_are_read_in_order() {
        let values = [
            "x-foo",
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate",
        ];
        let (agreed, _) = answer(values, &default_config()).unwrap();
        assert_eq!(agreed.server_max_window_bits, 10);
    }

    #[test]
    fn invalid_offers_are_declined() {
        for offer in [
            "permessage-deflate; mystery",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; Client_Max_Window_Bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=\"16\"",
            "x-webkit-deflate-frame",
            "permessage-deflate; server_max_window_bits=10; =",
        ] {
            assert_eq!(answer_one(offer, &default_config()), None, "{offer}");
        }
        assert_eq!(answer(core::iter::empty(), &default_config()), None);
    }

    #[test]
    fn an_unparseable_header_declines_every_offer() {
        // The first element would be acceptable, but the header as a whole is not a list.
        assert_eq!(
            answer_one("permessage-deflate, ;;", &default_config()),
            None
        );
        assert_eq!(
            answer(["permessage-deflate", "\"bad"], &default_config()),
            None
        );
    }

    #[test]
    fn quoted_window_bits_are_accepted() {
        let (agreed, header) = answer_one(
            "permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"11\"",
            &default_config(),
        )
        .unwrap();
        assert_eq!(
            header,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11"
        );
        assert_eq!(agreed, negotiated(false, false, 10, 11));
    }

    #[test]
    fn names_are_case_insensitive() {
        let (agreed, _) = answer_one(
            "PerMessage-Deflate; SERVER_NO_CONTEXT_TAKEOVER",
            &default_config(),
        )
        .unwrap();
        assert!(agreed.server_no_context_takeover);
    }

    // ----- Server: each parameter against our configuration -----

    #[test]
    fn server_adds_server_no_context_takeover_when_configured() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            ..default_config()
        };
        let (agreed, header) = answer_one("permessage-deflate", &config).unwrap();
        assert_eq!(header, "permessage-deflate; server_no_context_takeover");
        assert!(agreed.server_no_context_takeover);
    }

    #[test]
    fn server_asks_client_no_context_takeover_when_configured() {
        let config = DeflateConfig {
            client_no_context_takeover: true,
            ..default_config()
        };
        let (agreed, header) = answer_one("permessage-deflate", &config).unwrap();
        assert_eq!(header, "permessage-deflate; client_no_context_takeover");
        assert!(agreed.client_no_context_takeover);
    }

    #[test]
    fn server_window_is_the_smaller_of_offer_and_config() {
        let config = DeflateConfig {
            server_max_window_bits: 11,
            ..default_config()
        };
        let check = |offer: &str, header: &str, bits: u8| {
            let (agreed, got) = answer_one(offer, &config).unwrap();
            assert_eq!(got, header, "{offer}");
            assert_eq!(agreed.server_max_window_bits, bits, "{offer}");
        };
        check(
            "permessage-deflate; server_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9",
            9,
        );
        check(
            "permessage-deflate; server_max_window_bits=13",
            "permessage-deflate; server_max_window_bits=11",
            11,
        );
        // Not asked: we may announce our smaller window (§7.1.2.1).
        check(
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=11",
            11,
        );
    }

    #[test]
    fn client_window_only_when_offered() {
        let config = DeflateConfig {
            client_max_window_bits: 10,
            ..default_config()
        };
        // Not offered: the answer MUST NOT limit it, and the client may use 15 bits.
        let (agreed, header) = answer_one("permessage-deflate", &config).unwrap();
        assert_eq!(header, "permessage-deflate");
        assert_eq!(agreed.client_max_window_bits, 15);
        // Offered bare: we ask for ours.
        let (agreed, header) =
            answer_one("permessage-deflate; client_max_window_bits", &config).unwrap();
        assert_eq!(header, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(agreed.client_max_window_bits, 10);
        // Offered with a value: the smaller one.
        let (agreed, header) =
            answer_one("permessage-deflate; client_max_window_bits=9", &config).unwrap();
        assert_eq!(header, "permessage-deflate; client_max_window_bits=9");
        assert_eq!(agreed.client_max_window_bits, 9);
        let (agreed, header) =
            answer_one("permessage-deflate; client_max_window_bits=12", &config).unwrap();
        assert_eq!(header, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(agreed.client_max_window_bits, 10);
        // With the default config a value offered is echoed, so both ends agree on it.
        let (agreed, header) = answer_one(
            "permessage-deflate; client_max_window_bits=12",
            &default_config(),
        )
        .unwrap();
        assert_eq!(header, "permessage-deflate; client_max_window_bits=12");
        assert_eq!(agreed.client_max_window_bits, 12);
    }

    #[test]
    fn strict_config_answer() {
        let (agreed, header) = answer_one(
            "permessage-deflate; client_max_window_bits",
            &strict_config(),
        )
        .unwrap();
        assert_eq!(
            header,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=9"
        );
        assert_eq!(agreed, negotiated(true, true, 9, 9));
    }

    #[test]
    fn out_of_range_config_is_clamped() {
        let config = DeflateConfig {
            server_max_window_bits: 3,
            client_max_window_bits: 40,
            ..default_config()
        };
        let (agreed, header) =
            answer_one("permessage-deflate; client_max_window_bits", &config).unwrap();
        assert_eq!(header, "permessage-deflate; server_max_window_bits=8");
        assert_eq!(agreed, negotiated(false, false, 8, 15));
    }

    #[test]
    fn every_answer_is_a_valid_response_for_its_offer() {
        // What the server sends must pass the client's own check of the same offer.
        let configs = [
            default_config(),
            strict_config(),
            DeflateConfig {
                server_max_window_bits: 12,
                client_max_window_bits: 10,
                ..default_config()
            },
        ];
        for client in &configs {
            for server in &configs {
                let (agreed, header) = answer_one(&offer(client), server).unwrap();
                assert_eq!(check_response(&header, client), Ok(agreed), "{header}");
            }
        }
    }

    // ----- Client: the offer -----

    #[test]
    fn client_offers() {
        assert_eq!(
            offer(&default_config()),
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(
            offer(&strict_config()),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=9"
        );
        let config = DeflateConfig {
            client_max_window_bits: 12,
            ..default_config()
        };
        assert_eq!(
            offer(&config),
            "permessage-deflate; client_max_window_bits=12"
        );
    }

    // ----- Client: checking the answer -----

    #[test]
    fn client_accepts_valid_answers() {
        let config = default_config();
        let check = |value: &str| check_response(value, &config);
        assert_eq!(check("permessage-deflate"), Ok(Negotiated::default()));
        assert_eq!(check(" permessage-deflate "), Ok(Negotiated::default()));
        // What Autobahn's fuzzingserver answers.
        assert_eq!(
            check("permessage-deflate; client_no_context_takeover; client_max_window_bits=9"),
            Ok(negotiated(false, true, 15, 9))
        );
        assert_eq!(
            check("permessage-deflate; server_no_context_takeover"),
            Ok(negotiated(true, false, 15, 15))
        );
        // §7.1.2.1: a window the client did not ask for may still be announced.
        assert_eq!(
            check("permessage-deflate; server_max_window_bits=8"),
            Ok(negotiated(false, false, 8, 15))
        );
        assert_eq!(
            check("permessage-deflate; client_max_window_bits=\"8\""),
            Ok(negotiated(false, false, 15, 8))
        );
    }

    #[test]
    fn client_keeps_to_the_window_it_offered() {
        let config = DeflateConfig {
            client_max_window_bits: 11,
            ..default_config()
        };
        assert_eq!(
            check_response("permessage-deflate", &config),
            Ok(negotiated(false, false, 15, 11))
        );
        assert_eq!(
            check_response("permessage-deflate; client_max_window_bits=9", &config),
            Ok(negotiated(false, false, 15, 9))
        );
        assert_eq!(
            check_response("permessage-deflate; client_max_window_bits=12", &config),
            Err(NegotiationError::WindowTooLarge {
                parameter: CLIENT_MAX_WINDOW_BITS,
                offered: 11,
                answered: 12
            })
        );
    }

    #[test]
    fn client_refuses_invalid_answers() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..default_config()
        };
        let check = |value: &str| check_response(value, &config);
        let ok = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10";
        assert!(check(ok).is_ok());
        assert_eq!(check(""), Err(NegotiationError::ExpectedOneExtension(0)));
        assert_eq!(
            check(&format!("{ok}, {ok}")),
            Err(NegotiationError::ExpectedOneExtension(2))
        );
        assert_eq!(
            check("x-webkit-deflate-frame"),
            Err(NegotiationError::UnrequestedExtension(
                "x-webkit-deflate-frame".into()
            ))
        );
        assert_eq!(
            check(&format!("{ok}; foo")),
            Err(NegotiationError::UnknownParameter("foo".into()))
        );
        assert_eq!(
            check(&format!("{ok}; server_no_context_takeover")),
            Err(NegotiationError::DuplicateParameter(
                SERVER_NO_CONTEXT_TAKEOVER
            ))
        );
        assert_eq!(
            check("permessage-deflate; server_no_context_takeover=yes; server_max_window_bits=10"),
            Err(NegotiationError::UnexpectedValue(
                SERVER_NO_CONTEXT_TAKEOVER
            ))
        );
        assert_eq!(
            check("permessage-deflate; server_max_window_bits=10"),
            Err(NegotiationError::MissingServerNoContextTakeover)
        );
        // Absent means 15, more than the 10 we asked for.
        assert_eq!(
            check("permessage-deflate; server_no_context_takeover"),
            Err(NegotiationError::WindowTooLarge {
                parameter: SERVER_MAX_WINDOW_BITS,
                offered: 10,
                answered: 15
            })
        );
        assert_eq!(
            check("permessage-deflate; server_no_context_takeover; server_max_window_bits=11"),
            Err(NegotiationError::WindowTooLarge {
                parameter: SERVER_MAX_WINDOW_BITS,
                offered: 10,
                answered: 11
            })
        );
        assert_eq!(
            check(&format!("{ok}; client_max_window_bits")),
            Err(NegotiationError::MissingValue(CLIENT_MAX_WINDOW_BITS))
        );
        assert_eq!(
            check(&format!("{ok}; client_max_window_bits=7")),
            Err(NegotiationError::InvalidWindowBits {
                parameter: CLIENT_MAX_WINDOW_BITS,
                value: "7".into()
            })
        );
        assert!(matches!(
            check("permessage-deflate;"),
            Err(NegotiationError::Malformed(_))
        ));
    }

    #[test]
    fn an_answer_checked_against_the_offer_sent_is_checked_against_its_config() {
        let configs = [
            default_config(),
            strict_config(),
            DeflateConfig {
                server_max_window_bits: 12,
                client_max_window_bits: 10,
                ..default_config()
            },
            DeflateConfig {
                server_max_window_bits: 3,
                client_max_window_bits: 40,
                server_no_context_takeover: true,
                ..default_config()
            },
        ];
        let answers = [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; client_max_window_bits",
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate;",
        ];
        for config in &configs {
            for answer in answers {
                assert_eq!(
                    check_answer(&offer(config), answer),
                    check_response(answer, config),
                    "{config:?} {answer}"
                );
            }
        }
    }

    #[test]
    fn errors_display_their_reason() {
        let e = NegotiationError::WindowTooLarge {
            parameter: SERVER_MAX_WINDOW_BITS,
            offered: 10,
            answered: 12,
        };
        assert_eq!(
            e.to_string(),
            "server_max_window_bits=12 is larger than the 10 offered"
        );
        let e: &dyn std::error::Error = &NegotiationError::MissingServerNoContextTakeover;
        assert!(e.to_string().contains("server_no_context_takeover"));
    }
}
