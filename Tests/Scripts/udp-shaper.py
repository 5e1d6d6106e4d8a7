#!/usr/bin/env python3
"""A UDP relay that loses, duplicates and reorders datagrams, for WOW's namespace tests (docs/testing.md).

  udp-shaper.py --listen IP:PORT --to IP:PORT [--loss P] [--duplicate P] [--reorder P] [--seed N]
                [--stats FILE]

The kernel here has no netem: this stands in for a bad path in user space. A client sends to --listen; each
datagram goes on to --to from a socket of its own (bound to the --listen address, another port), and each
answer goes back to the client that sent last. In each direction, independently, every datagram is
  - dropped with probability --loss, else
  - held back with probability --reorder: it leaves right after the next datagram of its direction (or
    after 20 ms if none comes), so the two arrive swapped, and
  - sent twice with probability --duplicate.
A seed makes a run's decisions repeatable. The counters (per direction: received, forwarded, dropped,
duplicated, reordered) go to --stats as JSON every second and at exit (SIGTERM).
"""
import argparse
import json
import os
import random
import select
import signal
import socket
import sys
import time


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


class Direction:
    def __init__(self, name, rng, args):
        self.name, self.rng, self.args = name, rng, args
        self.held = None  # (datagram, destination, socket, since)
        self.counts = {"received": 0, "forwarded": 0, "dropped": 0, "duplicated": 0, "reordered": 0}

    def send(self, sock, data, destination):
        try:
            sock.sendto(data, destination)
            self.counts["forwarded"] += 1
        except OSError:
            pass

    def handle(self, data, sock, destination):
        self.counts["received"] += 1
        if self.rng.random() < self.args.loss:
            self.counts["dropped"] += 1
            return
        copies = 2 if self.rng.random() < self.args.duplicate else 1
        if copies == 2:
            self.counts["duplicated"] += 1
        if self.held is None and self.rng.random() < self.args.reorder:
            self.counts["reordered"] += 1
            self.held = (data, destination, sock, time.monotonic(), copies)
            return
        for _ in range(copies):
            self.send(sock, data, destination)
        self.release()

    def release(self, older_than=None):
        if self.held is None:
            return
        data, destination, sock, since, copies = self.held
        if older_than is not None and time.monotonic() - since < older_than:
            return
        self.held = None
        for _ in range(copies):
            self.send(sock, data, destination)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats")
    args = parser.parse_args()

    listen = address(args.listen)
    server = address(args.to)
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(listen)
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind((listen[0], 0))
    for sock in (front, back):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setblocking(False)
    upstream = Direction("to_server", random.Random(args.seed), args)
    downstream = Direction("to_client", random.Random(args.seed + 1), args)
    client = None
    running = [True]

    def write_stats():
        if not args.stats:
            return
        value = {"to_server": upstream.counts, "to_client": downstream.counts,
                 "back_port": back.getsockname()[1]}
        with open(args.stats + ".tmp", "w") as file:
            json.dump(value, file)
        os.replace(args.stats + ".tmp", args.stats)

    def stop(*_):
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_stats()
    last_stats = time.monotonic()
    while running[0]:
        try:
            readable, _, _ = select.select([front, back], [], [], 0.01)
        except InterruptedError:
            continue
        for sock in readable:
            # Drain what is queued (bounded, so neither direction starves the other).
            for _ in range(256):
                try:
                    data, source = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if sock is front:
                    client = source
                    upstream.handle(data, back, server)
                elif client is not None:
                    downstream.handle(data, front, client)
        upstream.release(older_than=0.02)
        downstream.release(older_than=0.02)
        if time.monotonic() - last_stats > 1:
            write_stats()
            last_stats = time.monotonic()
    write_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
