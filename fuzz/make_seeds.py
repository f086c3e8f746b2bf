#!/usr/bin/env python3
"""Write the hand-made seed inputs into corpus/<target>/ (run from fuzz/).

Each target reads its first bytes as control bytes (see src/lib.rs and the targets); the
seeds spell them out. A fuzzer-found file with the same contents as a seed is removed, so
that the seed keeps its readable name.
"""
import hashlib
import os

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def write(target, name, data):
    folder = f"corpus/{target}"
    os.makedirs(folder, exist_ok=True)
    twin = os.path.join(folder, hashlib.sha1(data).hexdigest())
    if os.path.exists(twin):
        os.remove(twin)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def masked(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def client_frame(first_byte, payload, key=KEY):
    n = len(payload)
    if n <= 125:
        head = bytes([first_byte, 0x80 | n])
    elif n <= 0xFFFF:
        head = bytes([first_byte, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first_byte, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + masked(payload, key)


# RFC 6455 §5.7, "Examples".
UNMASKED_HELLO = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
MASKED_HELLO = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
FRAGMENT_HEL = bytes([0x01, 0x03, 0x48, 0x65, 0x6C])
UNMASKED_PING = bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
MASKED_PONG = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
BINARY_256 = bytes([0x82, 0x7E, 0x01, 0x00])
BINARY_64K = bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])

# frame_header: raw header bytes.
for name, data in [
    ("rfc-unmasked-hello", UNMASKED_HELLO),
    ("rfc-masked-hello", MASKED_HELLO),
    ("rfc-fragment-hel", FRAGMENT_HEL),
    ("rfc-ping", UNMASKED_PING),
    ("rfc-masked-pong", MASKED_PONG),
    ("rfc-256-binary", BINARY_256),
    ("rfc-64k-binary", BINARY_64K),
    ("masked-64bit-len", bytes([0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4])),
    ("close-1000", bytes([0x88, 0x02, 0x03, 0xE8])),
]:
    write("frame_header", name, data)


# session_server: max_message_size (u16 LE), frame-size selector (>= 0x80: same as the
# message size), flags (1: take events after each piece, 2: echo, 4: EOF at the end),
# four piece-size seeds; then the client's bytes.
def session(msg=0xFFFF, frame=0x80, flags=0x03, seeds=b"\xff\xff\xff\xff"):
    return msg.to_bytes(2, "little") + bytes([frame, flags]) + seeds


stream = (
    MASKED_HELLO
    + client_frame(0x01, b"Hel")
    + client_frame(0x89, b"ping")
    + client_frame(0x80, b"lo")
    + client_frame(0x82, bytes(range(200)))
    + client_frame(0x8A, b"")
)
kosme = "κό".encode()
write("session_server", "rfc-masked-hello", session() + MASKED_HELLO)
write("session_server", "fragmented-with-ping", session(seeds=b"\x00\x41\x02\x7f") + stream)
write(
    "session_server",
    "utf8-split-across-fragments",
    session(seeds=b"\x01\x01\x01\x01") + client_frame(0x01, kosme[:3]) + client_frame(0x80, kosme[3:]),
)
write(
    "session_server",
    "close-with-reason",
    session() + client_frame(0x81, b"bye") + client_frame(0x88, (1000).to_bytes(2, "big") + b"done"),
)
write(
    "session_server",
    "message-over-limit",
    session(msg=100) + client_frame(0x01, b"x" * 60) + client_frame(0x80, b"y" * 60),
)
write(
    "session_server",
    "invalid-utf8",
    session(flags=0x01, seeds=b"\x00\x00\x00\x00") + client_frame(0x81, b"\xce\xba\xed\xa0\x80"),
)
write("session_server", "unmasked-frame", session() + UNMASKED_HELLO)
write("session_server", "bin-16bit-len", session(flags=0x07, seeds=b"\x8a\x40\xc0\x03") + client_frame(0x82, bytes(300)))

# differential: flags (1: client, 2: EOF at the end, 4: the application closes after piece
# flags >> 4), max_message_size (u16 LE, 0xFFFF: 64 MiB), frame-size selector (>= 0x80: the
# message size, else 16 * it), chunk size - 125, five piece-size seeds; then the peer's bytes.
def differential(flags=0x00, msg=0xFFFF, frame=0x80, chunk=0, seeds=b"\xff\xff\xff\xff\xff"):
    return bytes([flags]) + msg.to_bytes(2, "little") + bytes([frame, chunk]) + seeds


def server_frame(first_byte, payload):
    assert len(payload) <= 125
    return bytes([first_byte, len(payload)]) + payload


write("differential", "fragmented-with-ping", differential(seeds=b"\x00\x41\x02\x7f\x03") + stream)
write("differential", "chunks-cut-characters", differential(chunk=3) + client_frame(0x81, "é€".encode() * 60))
write("differential", "utf8-split-across-fragments", differential(seeds=b"\x01" * 5) + client_frame(0x01, kosme[:3]) + client_frame(0x80, kosme[3:]))
write("differential", "invalid-utf8-mid-fragment", differential() + client_frame(0x01, b"ok\xed\xa0") + client_frame(0x80, b"x"))
write("differential", "message-over-limit", differential(msg=100) + client_frame(0x01, b"x" * 60) + client_frame(0x80, b"y" * 60))
write("differential", "close-then-more", differential(flags=0x02) + client_frame(0x88, (1001).to_bytes(2, "big") + b"gone") + MASKED_HELLO)
write("differential", "app-closes-first", differential(flags=0x14) + MASKED_HELLO + client_frame(0x89, b"p") + client_frame(0x88, b""))
write("differential", "client-role", differential(flags=0x01) + UNMASKED_HELLO + UNMASKED_PING + server_frame(0x88, (1000).to_bytes(2, "big")))

# handshake_request: limits selector (< 0x80: defaults), max headers, four piece-size seeds;
# then the request.
CHROME = (
    b"GET /chat?room=1 HTTP/1.1\r\nHost: localhost:9001\r\nConnection: Upgrade\r\n"
    b"Pragma: no-cache\r\nCache-Control: no-cache\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/120.0.0.0 Safari/537.36\r\n"
    b"Upgrade: websocket\r\nOrigin: http://localhost:9001\r\nSec-WebSocket-Version: 13\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n\r\n"
)
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
write("handshake_request", "chrome-upgrade", b"\x00\x00\xff\xff\xff\xff" + CHROME)
write("handshake_request", "rfc-4-1-upgrade-trickle", b"\x00\x00\x00\x01\x02\x41" + RFC_REQUEST + b"\x81\x85\x37\xfa\x21\x3d")
write("handshake_request", "version-8", b"\x00\x00\x45\x82\xff\x00" + RFC_REQUEST.replace(b"Version: 13", b"Version: 8"))
write("handshake_request", "post-bare-lf", b"\x00\x00\xff\xff\xff\xff" + b"POST / HTTP/1.1\nHost: a\n\n")
write("handshake_request", "small-limits", b"\x90\x03\x10\x20\x30\x40" + RFC_REQUEST)
write("handshake_request", "plain-get-http10", b"\x00\x00\xff\xff\xff\xff" + b"GET /index.html HTTP/1.0\r\nHost: example.com\r\n\r\n")

# utf8: four piece-size seeds, then the text.
write("utf8", "greek-one-byte-pieces", b"\x00\x00\x00\x00" + "κόσμε".encode())
write("utf8", "mixed-scripts", b"\x41\x02\x43\x01" + "aé€𝄞z 日本語 ✓".encode())
write("utf8", "surrogate", b"\x00\x01\x02\x03" + b"\xce\xba\xed\xa0\x80edited")
write("utf8", "above-10ffff", b"\xff\xff\xff\xff" + b"ok\xf4\x90\x80\x80")
write("utf8", "overlong", b"\x01\x00\x01\x00" + b"\xc0\xaf\xe0\x80\xaf")
write("utf8", "truncated-at-end", b"\x02\x02\x02\x02" + b"abc\xf0\x9f\x98")

# mask: the key, the starting offset, four piece-size seeds; then the data.
write("mask", "rfc-hello", KEY + b"\x00\xff\xff\xff\xff" + b"Hello")
write("mask", "offset-3-pieces", bytes([1, 2, 3, 4, 3, 0x00, 0x41, 0x81, 0x02]) + bytes(range(256)))
write("mask", "long-odd", bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x7D, 0x45, 0x03, 0x9A, 0xC1]) + bytes((i * 7) % 256 for i in range(1500)))
# The first crash the mask target found was in the target itself: no data and an offset > 3.
write("mask", "no-data-large-offset", bytes([1, 2, 3, 4, 108, 0xFF, 0xFF, 0xFF, 0xFF]))

# session_deflate: message limit (u16 LE), negotiated parameters (bit 0/1 server/client no
# context takeover, bits 2-4 and 5-7 window bits - 8), level | threshold/4 << 4 | 0x08 to
# take events after each piece, four piece-size seeds; then client frames with RSV1.
import zlib


def deflated(data, wbits=15, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def deflate_session(msg=0xFFFF, params=0xFC, flags=0x0E, seeds=b"\xff\xff\xff\xff"):
    return msg.to_bytes(2, "little") + bytes([params, flags]) + seeds


RFC7692_HELLO = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
write("session_deflate", "rfc7692-hello", deflate_session() + client_frame(0xC1, RFC7692_HELLO))
write(
    "session_deflate",
    "rfc7692-fragmented-hello",
    deflate_session(seeds=b"\x02\x41\x00\xc0") + client_frame(0x41, RFC7692_HELLO[:3]) + client_frame(0x80, RFC7692_HELLO[3:]),
)
text = ("order 42: the customer is asking. " * 40).encode()
write("session_deflate", "text-then-ping", deflate_session(seeds=b"\x85\x13\x40\x01") + client_frame(0xC1, deflated(text)) + client_frame(0x89, b"hb"))
write("session_deflate", "binary-window-9-no-takeover", deflate_session(params=0x27) + client_frame(0xC2, deflated(bytes(range(256)) * 8, wbits=9)))
write("session_deflate", "bomb-small-limit", deflate_session(msg=4096) + client_frame(0xC2, deflated(bytes(200_000))))
write("session_deflate", "plain-and-compressed", deflate_session(flags=0x16) + client_frame(0x81, b"plain") + client_frame(0xC1, deflated(b"packed packed packed")))
write("session_deflate", "rsv1-on-continuation", deflate_session() + client_frame(0x41, RFC7692_HELLO[:3]) + client_frame(0xC0, RFC7692_HELLO[3:]))
write("session_deflate", "invalid-deflate", deflate_session() + client_frame(0xC2, b"\xff\xff\xff\xff"))
write("session_deflate", "final-block", deflate_session() + client_frame(0xC1, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])) + client_frame(0xC1, RFC7692_HELLO))
