#!/usr/bin/env python3
"""Floods a TCP (or TLS) port with connections that never say anything (Scripts/flood-bench.sh).

    tcp-flood.py --to 198.18.0.1:443 --sources 198.18.64.1/29 [--connections 4000] [--seconds 10] [--result F]

Opens connections from every address of --sources (each must lie in 198.18.0.0/15 and be an address of this
namespace) in turn, up to --connections at once, holds each open without sending a byte (a TLS listener waits
for a ClientHello that never comes, a tcp one for a first frame), and opens a new one as soon as one is closed
or refused, until --seconds passed or SIGTERM came. Writes {"opened": N, "closed_by_peer": N, "refused": N,
"most_open": N, "seconds": S} to --result.
"""
import argparse, errno, ipaddress, json, resource, selectors, signal, socket, time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", required=True)
    parser.add_argument("--sources", required=True)
    parser.add_argument("--connections", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--result")
    args = parser.parse_args()
    host, port = args.to.rsplit(":", 1)
    target = (host, int(port))
    sources = [str(a) for a in ipaddress.ip_network(args.sources, strict=False)]
    allowed = ipaddress.ip_network("198.18.0.0/15")
    if not all(ipaddress.ip_address(a) in allowed for a in sources + [host]):
        raise SystemExit("tcp-flood.py: addresses must lie in 198.18.0.0/15")
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.connections + 64, args.connections + 64))
    selector = selectors.DefaultSelector()
    stats = {"opened": 0, "closed_by_peer": 0, "refused": 0, "most_open": 0}
    open_sockets = set()
    next_source = 0

    def open_one():
        nonlocal next_source
        source = sources[next_source % len(sources)]
        next_source += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            sock.connect_ex(target)
        except OSError:
            sock.close()
            stats["refused"] += 1
            return
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, "connecting")
        open_sockets.add(sock)

    def close(sock, counter):
        stats[counter] += 1
        selector.unregister(sock)
        open_sockets.discard(sock)
        sock.close()

    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    start = time.monotonic()
    end = start + args.seconds
    while time.monotonic() < end and not stopped:
        # A few new connections a round, so that the loop keeps reading what the node closes.
        for _ in range(min(64, args.connections - len(open_sockets))):
            open_one()
        stats["most_open"] = max(stats["most_open"], len(open_sockets))
        for key, events in selector.select(timeout=0.01):
            sock = key.fileobj
            if key.data == "connecting" and events & selectors.EVENT_WRITE:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    close(sock, "refused")
                    continue
                stats["opened"] += 1
                selector.modify(sock, selectors.EVENT_READ, "open")
                continue
            if events & selectors.EVENT_READ:
                try:
                    data = sock.recv(4096)
                except OSError as failure:
                    data = b"" if failure.errno != errno.EAGAIN else None
                if data == b"":
                    close(sock, "closed_by_peer")
    elapsed = time.monotonic() - start
    for sock in list(open_sockets):
        sock.close()
    stats["seconds"] = elapsed
    if args.result:
        with open(args.result, "w") as f:
            json.dump(stats, f)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
