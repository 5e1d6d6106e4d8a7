#!/usr/bin/env python3
"""A long-running, checksummed TCP stream for WOW's namespace tests (docs/testing.md).

  tcp-stream.py receive --listen IP:PORT --result FILE     (IP: IPv4, or IPv6 as [fd00::1]:5001)
  tcp-stream.py send --to IP:PORT --bytes N --rate BYTES_PER_S --result FILE

The sender writes N pseudo-random bytes (SHA-256 in counter mode, so nothing repeats) at about RATE bytes a
second, then closes. The receiver accepts one connection and reads until the sender closes. Each writes a
JSON result: bytes, the SHA-256 of every byte, and, for the receiver, the longest pause between two reads
while the stream ran (the gap a migration causes). Exit status 0 when the stream ran to its end.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import time


def address(text):
    """IP:PORT, the IP an IPv4 or IPv6 address ([fd00::1]:5001 or fd00::1:5001)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def block(index):
    return hashlib.sha256(b"wow-stream/%d" % index).digest() * 32  # 1 KiB


def send(args):
    sock = socket.create_connection(address(args.to), timeout=10)
    sock.settimeout(None)
    digest = hashlib.sha256()
    sent = 0
    start = time.monotonic()
    index = 0
    while sent < args.bytes:
        data = block(index)[: args.bytes - sent]
        index += 1
        sock.sendall(data)
        digest.update(data)
        sent += len(data)
        ahead = sent / args.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    sock.shutdown(socket.SHUT_WR)
    # Wait for the receiver to close: every byte was read.
    sock.recv(1)
    sock.close()
    write(args.result, {"bytes": sent, "sha256": digest.hexdigest(), "seconds": time.monotonic() - start})


def receive(args):
    listen = address(args.listen)
    server = socket.socket(socket.AF_INET6 if ":" in listen[0] else socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(listen)
    server.listen(1)
    write(args.result + ".listening", {"listening": True})
    connection, _ = server.accept()
    digest = hashlib.sha256()
    received = 0
    longest = 0.0
    longest_at = 0
    last = None
    reported = 0.0
    while True:
        data = connection.recv(65536)
        now = time.monotonic()
        if not data:
            break
        if last is not None and now - last > longest:
            longest, longest_at = now - last, received
        last = now
        digest.update(data)
        received += len(data)
        if now - reported > 0.2:
            write(args.result + ".progress", {"bytes": received})
            reported = now
    connection.close()
    write(args.result, {"bytes": received, "sha256": digest.hexdigest(), "longest_gap_s": longest,
                        "longest_gap_at_byte": longest_at})


def write(path, value):
    with open(path + ".tmp", "w") as file:
        json.dump(value, file)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("receive")
    r.add_argument("--listen", required=True)
    r.add_argument("--result", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--bytes", type=int, required=True)
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--result", required=True)
    args = parser.parse_args()
    try:
        send(args) if args.mode == "send" else receive(args)
    except OSError as error:
        print("tcp-stream.py %s: %s" % (args.mode, error), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
