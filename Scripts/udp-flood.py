#!/usr/bin/env python3
"""Floods a UDP port with datagrams from forged source addresses (Scripts/flood-bench.sh; root: a raw socket).

    udp-flood.py --to 198.18.0.1:4000 --kind random|init --seconds 10 [--sources 198.18.128.0/17] [--result F]

random: random bytes, 64-400 long. init: 01 20 and random bytes, 370 long (a handshake init's size and first
bytes, without this network's admission MAC). Every datagram from a random address of --sources (which must
lie in 198.18.0.0/15) and a random port. Writes {"sent": N, "seconds": S} to --result.
"""
import argparse, ipaddress, json, os, random, socket, struct, time

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def datagram(source, port, destination, dport, payload):
    udp = struct.pack("!HHHH", port, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.randrange(65536), 0, 64, 17, 0,
                         source, destination)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", required=True)
    parser.add_argument("--kind", choices=["random", "init"], default="random")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--sources", default="198.18.128.0/17")
    parser.add_argument("--result")
    args = parser.parse_args()
    host, port = args.to.rsplit(":", 1)
    sources = ipaddress.ip_network(args.sources)
    allowed = ipaddress.ip_network("198.18.0.0/15")
    if not sources.subnet_of(allowed) or not ipaddress.ip_address(host) in allowed:
        raise SystemExit("udp-flood.py: addresses must lie in 198.18.0.0/15")
    destination = socket.inet_aton(host)
    packets = []
    for _ in range(4096):
        source = (sources.network_address + random.randrange(sources.num_addresses)).packed
        if args.kind == "random":
            payload = os.urandom(random.randrange(64, 401))
        else:
            payload = b"\x01\x20" + os.urandom(368)
        packets.append(datagram(source, random.randrange(1024, 65536), destination, int(port), payload))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    target = (host, 0)
    sent = 0
    start = time.monotonic()
    end = start + args.seconds
    while time.monotonic() < end:
        for packet in packets[:512]:
            try:
                sock.sendto(packet, target)
                sent += 1
            except (BlockingIOError, OSError):
                pass
        packets = packets[512:] + packets[:512]
    elapsed = time.monotonic() - start
    if args.result:
        with open(args.result, "w") as f:
            json.dump({"sent": sent, "seconds": elapsed}, f)
    print(f"sent {sent} datagrams in {elapsed:.1f} s ({sent / elapsed:.0f}/s)")

if __name__ == "__main__":
    main()
