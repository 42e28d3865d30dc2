#!/usr/bin/env python3
"""A TCP proxy for benchmarks that adds latency and counts round trips.

    delay_proxy.py --target 127.0.0.1:10587 --rtt-ms 50 \
        --port-file /tmp/p.port --stats-file /tmp/p.json

Listens on 127.0.0.1 (port 0 = any free port, written to --port-file) and
forwards every connection to --target. Each direction is delayed by half of
--rtt-ms, so a request/reply exchange takes RTT longer. Data keeps its order
and is never merged with later data beyond what TCP itself does.

Round trips: the number of times the client had to wait for the server,
counted per connection as the transitions from server->client data to
client->server data (the client sends something after having received
something since its own last send). A client that pipelines commands has
fewer of them. The server's greeting followed by the client's first command
counts as one, as does each TLS handshake flight the client answers. A TLS
close_notify the client sends after the server's last reply counts too (it
did wait for that reply).

--log FILE records every chunk with its direction, size and time, and marks
each counted round trip: handy to see where a client waits.

Statistics (JSON: connections, round_trips, bytes each way) are written to
--stats-file after every connection closes and on SIGTERM/SIGINT.
Loopback only: it refuses a target or listen address outside 127.0.0.0/8.
"""

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import sys

CHUNK = 256 * 1024


class Stats:
    def __init__(self, path):
        self.path = path
        self.connections = 0
        self.round_trips = 0
        self.client_bytes = 0
        self.server_bytes = 0

    def write(self):
        if not self.path:
            return
        data = {
            "connections": self.connections,
            "round_trips": self.round_trips,
            "client_to_server_bytes": self.client_bytes,
            "server_to_client_bytes": self.server_bytes,
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.write("\n")
        os.replace(tmp, self.path)


class Connection:
    """One proxied connection and its round-trip bookkeeping."""

    def __init__(self, stats, log, number):
        self.stats = stats
        self.log = log
        self.number = number
        self.started = asyncio.get_running_loop().time()
        # Whether the client has been handed server data since it last sent.
        self.server_spoke = False
        self.round_trips = 0

    def note(self, text):
        if self.log:
            at = (asyncio.get_running_loop().time() - self.started) * 1000
            self.log.write(f"[{self.number}] {at:9.1f} ms  {text}\n")
            self.log.flush()

    def client_sent(self, n):
        if self.server_spoke:
            self.stats.round_trips += 1
            self.round_trips += 1
            self.server_spoke = False
            self.note(f"C->S {n} bytes   (round trip {self.round_trips})")
        else:
            self.note(f"C->S {n} bytes")

    def client_received(self, n):
        self.server_spoke = True
        self.note(f"S->C {n} bytes")


async def pump(reader, writer, delay, on_read, on_written, count):
    """Copies reader to writer, each chunk held back by `delay` seconds."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read_side():
        while True:
            try:
                data = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                data = b""
            if on_read:
                on_read(data)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write_side():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    if writer.can_write_eof():
                        writer.write_eof()
                except (ConnectionError, OSError):
                    pass
                return
            count(len(data))
            if on_written:
                on_written(data)
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                return

    await asyncio.gather(read_side(), write_side())


async def handle(client_reader, client_writer, args, stats, log):
    host, port = args.target
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError as e:
        print(f"delay_proxy: cannot reach {host}:{port}: {e}", file=sys.stderr)
        client_writer.close()
        return
    stats.connections += 1
    conn = Connection(stats, log, stats.connections)
    half = args.rtt_ms / 2000.0

    def count_c2s(n):
        stats.client_bytes += n

    def count_s2c(n):
        stats.server_bytes += n

    # The client "sends" when its data reaches us (loopback: at once); it
    # "receives" when we hand it the server's data after the delay.
    try:
        await relay(conn, client_reader, client_writer, server_reader, server_writer,
                    half, count_c2s, count_s2c)
    except asyncio.CancelledError:
        pass  # stopped while the connection was still open
    for w in (client_writer, server_writer):
        try:
            w.close()
        except (ConnectionError, OSError):
            pass
    stats.write()


async def relay(conn, client_reader, client_writer, server_reader, server_writer,
                half, count_c2s, count_s2c):
    await asyncio.gather(
        pump(client_reader, server_writer, half,
             lambda d: d and conn.client_sent(len(d)), None, count_c2s),
        pump(server_reader, client_writer, half,
             None, lambda d: conn.client_received(len(d)), count_s2c),
    )


def loopback_address(text):
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        raise argparse.ArgumentTypeError(f"{host} is not a loopback address")
    return host, int(port)


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, type=loopback_address, help="HOST:PORT to forward to")
    p.add_argument("--listen", default="127.0.0.1:0", type=loopback_address, help="HOST:PORT (default 127.0.0.1:0)")
    p.add_argument("--rtt-ms", type=float, default=50.0, help="added round-trip time in ms (default 50)")
    p.add_argument("--port-file", help="write the listening port here once ready")
    p.add_argument("--stats-file", help="write JSON statistics here")
    p.add_argument("--log", help="log every chunk (direction, size, time) and round trip here")
    args = p.parse_args()
    log = open(args.log, "a") if args.log else None

    stats = Stats(args.stats_file)
    stats.write()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args, stats, log), args.listen[0], args.listen[1])
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    stats.write()
    print(f"delay_proxy: {stats.connections} connection(s), {stats.round_trips} round trip(s)",
          file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
