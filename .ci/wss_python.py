"""A Python `websockets` client against our echo example over wss:// (feature `tls`).

Usage: wss_python.py URL CA_PEM. Verifies the server's certificate against CA_PEM (the
self-signed certificate `gen_cert` wrote) and its name, then echoes text and binary
messages at the frame length edges, a fragmented message, and closes with 1000. Exits
non-zero on any difference.
"""

import asyncio
import ssl
import string
import sys

import websockets


async def main(url: str, ca: str) -> None:
    context = ssl.create_default_context(cafile=ca)
    async with websockets.connect(
        url, ssl=context, max_size=None, compression=None, open_timeout=10
    ) as ws:
        for size in [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20]:
            text = (string.ascii_lowercase * (size // 26 + 1))[:size]
            await ws.send(text)
            got = await asyncio.wait_for(ws.recv(), 30)
            assert got == text, f"text {size}: {len(got)} chars back"
            data = (bytes(range(256)) * (size // 256 + 1))[:size]
            await ws.send(data)
            got = await asyncio.wait_for(ws.recv(), 30)
            assert got == data, f"binary {size}: {len(got)} bytes back"
        # An iterable is sent as one fragmented message.
        await ws.send(["frag", "ment", "ed ✓"])
        got = await asyncio.wait_for(ws.recv(), 30)
        assert got == "fragmented ✓", got
        await ws.close(1000, "done")
    assert ws.close_code == 1000, ws.close_code
    print(f"python websockets {websockets.__version__} over wss: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
