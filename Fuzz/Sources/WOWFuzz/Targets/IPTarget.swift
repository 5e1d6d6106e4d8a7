import NIOCore
import WOWKit

/// IP packets (IPv4 and IPv6) as the virtual network meets them: `IPPacket.header`, `TCPHeaders`, and
/// `VirtualNetwork` (a dual-stack node) deciding what becomes of a packet from the TUN device (sent to a ring
/// address, ICMP back, dropped) and of one the overlay delivered (written to the device or dropped), with its
/// ICMP for undeliverable packets. The input's first byte chooses whether the overlay's sender is the one the
/// packet's source IP entitles.
///
/// Checks: parsed header fields lie within the packet; the two checksum routines agree; a packet is sent only
/// from one of the node's IPs to the ring address of its destination inside that family's prefix; one is
/// written to the device only when its source IP is the sender's and its destination one of the node's; an
/// undeliverable packet leads to a lookup of its destination IP, then to an ICMP (ICMPv6) message that is a
/// well-formed, correctly checksummed unreachable back to the sender, quoting the packet.
enum IPTarget: FuzzTarget {
    static let name = "ip"
    static let summary = "IPPacket.header (IPv4, IPv6), TCPHeaders, VirtualNetwork from device / overlay, ICMP and ICMPv6; anti-spoofing"

    static let localIPs = [VirtualIP(PacketSamples.local), PacketSamples.local6]

    static func run(_ data: [UInt8]) {
        guard let flags = data.first else { return }
        let bytes = Array(data.dropFirst())
        let packet = ByteBuffer(bytes: bytes)
        let parsed = IPPacket.header(of: packet)
        if case .success(let header) = parsed {
            if bytes[0] >> 4 == 6 {
                require(header.headerLength == 40 && header.totalLength <= bytes.count && header.source.family == .v6
                            && header.destination.family == .v6, "IPv6 header \(header) of \(bytes.count) bytes")
            } else {
                require(bytes[0] >> 4 == 4 && header.headerLength >= 20 && header.headerLength % 4 == 0
                            && header.headerLength <= header.totalLength && header.totalLength <= bytes.count,
                        "header \(header) of \(bytes.count) bytes")
            }
        }
        if let tcp = TCPHeaders(packet) {
            require(tcp.isIPv6 == (bytes[0] >> 4 == 6) && (!tcp.isIPv6 || tcp.ipHeaderLength == 40),
                    "TCP headers \(tcp) of an IPv\(bytes[0] >> 4) packet")
            require(tcp.tcpHeaderLength >= 20 && tcp.tcpHeaderLength <= 60 && tcp.payloadLength >= 0
                        && tcp.totalLength <= bytes.count, "TCP headers \(tcp)")
        }
        let folded = bytes.withUnsafeBytes { ~IPv4Packet.fold(IPv4Packet.onesComplementSum($0)) }
        require(folded == IPv4Packet.checksum(bytes), "the two checksum routines disagree")

        var settings = VirtualNetwork.Settings()
        settings.mtu = VirtualNetwork.minimumIPv6MTU
        var network = VirtualNetwork(settings: settings, localIPs: localIPs, networkID: FuzzFixtures.network)
        let now = Timestamp(nanoseconds: 5_000_000_000)
        switch network.fromDevice(packet, now: now) {
        case .send(let sent, let destination):
            guard case .success(let header) = parsed else { return require(false, "sent a packet that does not parse") }
            require(sent == packet && localIPs.contains(header.source)
                        && settings.prefix(for: header.destination.family).contains(header.destination),
                    "sent a packet from \(header.source) to \(header.destination)")
            require(destination == Address.forVirtualIP(header.destination, network: FuzzFixtures.network),
                    "sent to the wrong ring address")
            // The destination is absent: the name service is asked, says nobody holds it, and the host gets ICMP.
            let error = RoutingError(code: .absentDestination, destination: destination, payloadType: .data,
                                     reporter: WireSamples.c)
            switch network.undeliverable(error, now: now) {
            case .lookUp(let ip):
                require(ip == header.destination, "looked up \(ip) for a packet to \(header.destination)")
                if let message = network.notHeld(ip, now: now) {
                    PacketSamples.checkUnreachable(message, from: header.destination, to: header.source, quoting: bytes)
                }
            case .icmp(let message):
                PacketSamples.checkUnreachable(message, from: header.destination, to: header.source, quoting: bytes)
            case .nothing: break
            }
        case .write(let message):
            guard case .success(let header) = parsed else { return require(false, "ICMP for a packet that does not parse") }
            PacketSamples.checkUnreachable(message, from: header.destination, to: header.source, quoting: bytes)
        case .drop(let reason):
            require(!reason.isEmpty, "a drop without a reason")
        }

        var receiver = VirtualNetwork(settings: settings, localIPs: localIPs, networkID: FuzzFixtures.network)
        let claimed: Address
        if case .success(let header) = parsed, flags & 1 == 0 {
            claimed = Address.forVirtualIP(header.source, network: FuzzFixtures.network)
        } else {
            claimed = FuzzFixtures.bob.address
        }
        switch receiver.fromOverlay(packet, source: claimed, now: now) {
        case .write(let written):
            guard case .success(let header) = parsed else { return require(false, "wrote a packet that does not parse") }
            require(written == packet && localIPs.contains(header.destination)
                        && Address.forVirtualIP(header.source, network: FuzzFixtures.network) == claimed,
                    "wrote a packet from \(header.source) (sender \(claimed)) to \(header.destination)")
        case .send:
            require(false, "a packet from the overlay sent on")
        case .drop(let reason):
            require(!reason.isEmpty, "a drop without a reason")
        }
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        let bob = PacketSamples.remote, alice = PacketSamples.local
        var options = PacketSamples.udp(payload: [1, 2, 3])
        options[0] = 0x46
        options.insert(contentsOf: [1, 1, 1, 0], at: 20)
        return [
            ("tcp-out", [0] + PacketSamples.tcp(payload: Array(PacketSamples.payload(100)))),
            ("tcp-in", [0] + PacketSamples.tcp(payload: [1, 2, 3], source: bob, destination: alice)),
            ("tcp-in-spoofed", [1] + PacketSamples.tcp(payload: [1, 2, 3], source: bob, destination: alice)),
            ("udp-out", [0] + PacketSamples.udp(payload: Array(PacketSamples.payload(30)))),
            ("ping-out", [0] + PacketSamples.ping()),
            ("ping-outside-prefix", [0] + PacketSamples.ping(destination: 0x0A00_0001)),
            ("multicast", [0] + PacketSamples.udp(payload: [9], destination: 0xE000_00FB)),
            ("options", [0] + options),
            ("padded", [0] + PacketSamples.udp(payload: [7]) + [0, 0, 0, 0]),
            ("ipv6-truncated", [0, 0x60, 0, 0, 0, 0, 8, 17, 64]),
            ("udp6-out", [0] + PacketSamples.udp6(payload: Array(PacketSamples.payload(30)))),
            ("udp6-in", [0] + PacketSamples.udp6(payload: [1, 2, 3], source: PacketSamples.remote6, destination: PacketSamples.local6)),
            ("ping6-out", [0] + PacketSamples.ping6()),
            ("ping6-outside-prefix", [0] + PacketSamples.ping6(destination: VirtualIP("fd00::1")!)),
            ("multicast6", [0] + PacketSamples.udp6(payload: [9], destination: VirtualIP("ff02::fb")!)),
        ]
    }
}
