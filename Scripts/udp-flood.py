#!/usr/bin/env python3
"""Floods a UDP port with datagrams from forged source addresses (Scripts/flood-bench.sh; root: a raw socket).

    udp-flood.py --to 198.18.0.1:4000 --kind random|init|replay --seconds 10 [--sources 198.18.128.0/17]
                 [--payload F] [--result F]
    udp-flood.py --capture F --port 4000 [--seconds 10]

random: random bytes, 64-400 long. init: what an outsider who knows the wire format can send: with --payload
(a genuine init datagram), its first 49 bytes (the udp data header, the init's kind, index, key and the
certificate's length, so that the layout checks pass) and random bytes for the rest (certificate, signature,
admission MAC); without, 01 20 and 368 random bytes. replay: the datagram in --payload (a genuine init captured
from a member) again and again. Every datagram from a random address of --sources (which must lie in
198.18.0.0/15) and a random port, until --seconds passed or SIGTERM came. Writes {"sent": N, "seconds": S} to --result.

--capture: waits (up to --seconds) on every interface of its namespace for the first UDP datagram to --port
that holds a handshake init (a udp data header, 01 0A and 7 bytes, then 01 20; at least 200 bytes), writes its
payload to F and exits (status 1 if none came).
"""
import argparse, ipaddress, json, os, random, signal, socket, struct, time

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

def capture(path, port, seconds):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    sock.settimeout(0.2)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            packet = sock.recv(65535)
        except socket.timeout:
            continue
        if len(packet) < 28 or packet[9] != 17:
            continue
        header = (packet[0] & 0x0F) * 4
        dport = struct.unpack("!H", packet[header + 2:header + 4])[0]
        payload = packet[header + 8:]
        if dport == port and len(payload) >= 200 and payload[:2] == b"\x01\x0a" and payload[9:11] == b"\x01\x20":
            with open(path, "wb") as f:
                f.write(payload)
            print(f"captured an init of {len(payload)} bytes")
            return
    raise SystemExit("udp-flood.py: no init captured")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--capture")
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--to")
    parser.add_argument("--kind", choices=["random", "init", "replay"], default="random")
    parser.add_argument("--payload")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--sources", default="198.18.128.0/17")
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.capture:
        return capture(args.capture, args.port, args.seconds)
    if not args.to:
        parser.error("--to is required")
    replayed = None
    if args.kind == "replay":
        if not args.payload:
            parser.error("--kind replay needs --payload")
        replayed = open(args.payload, "rb").read()
    if args.payload and len(open(args.payload, "rb").read()) < 200:
        parser.error("--payload must hold a genuine init datagram (200 bytes or more)")
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
        elif args.kind == "replay":
            payload = replayed
        elif args.payload:
            genuine = open(args.payload, "rb").read()
            payload = genuine[:49] + os.urandom(len(genuine) - 49)
        else:
            payload = b"\x01\x20" + os.urandom(368)
        packets.append(datagram(source, random.randrange(1024, 65536), destination, int(port), payload))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    target = (host, 0)
    sent = 0
    start = time.monotonic()
    end = start + args.seconds
    # SIGTERM ends the flood early (and the result is still written).
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    while time.monotonic() < end and not stopped:
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
