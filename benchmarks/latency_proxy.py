"""A TCP proxy that holds every chunk `delay` seconds each way: a relay across a network
for benchmarks/relay.py (loopback answers in microseconds, a relay in a data centre in
milliseconds). Order is kept; nothing is changed.

    python benchmarks/latency_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
               delay: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            loop.call_later(delay, writer.write, data)
        await asyncio.sleep(delay)
    finally:
        loop.call_later(delay, writer.close)


async def main(listen: int, target: str, delay: float) -> None:
    host, _, port = target.rpartition(":")

    async def serve(client_reader, client_writer):
        relay_reader, relay_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_reader, relay_writer, delay),
                             pipe(relay_reader, client_writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(serve, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 1000))
