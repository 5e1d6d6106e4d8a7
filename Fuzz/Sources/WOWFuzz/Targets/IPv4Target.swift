import NIOCore
import WOWKit

/// IPv4 packets as the virtual network meets them: `IPv4Packet.header`, `TCPHeaders`, and `VirtualNetwork`
/// deciding what becomes of a packet from the TUN device (sent to a ring address, ICMP back, dropped) and of
/// one the overlay delivered (written to the device or dropped), with its ICMP for undeliverable packets.
/// The input's first byte chooses whether the overlay's sender is the one the packet's source IP entitles.
///
/// Checks: parsed header fields lie within the packet; the two checksum routines agree; a packet is sent only
/// from the node's own IP to the ring address of its destination inside the prefix; one is written to the
/// device only when its source IP is the sender's and its destination the node's; every ICMP message is a
/// well-formed, correctly checksummed unreachable back to the sender, quoting the packet.
enum IPv4Target: FuzzTarget {
    static let name = "ipv4"
    static let summary = "IPv4Packet.header, TCPHeaders, VirtualNetwork from device / overlay, ICMP; anti-spoofing"

    static let localIP = VirtualIP(PacketSamples.local)

    static func run(_ data: [UInt8]) {
        guard let flags = data.first else { return }
        let bytes = Array(data.dropFirst())
        let packet = ByteBuffer(bytes: bytes)
        let parsed = IPv4Packet.header(of: packet)
        if case .success(let header) = parsed {
            require(bytes[0] >> 4 == 4 && header.headerLength >= 20 && header.headerLength % 4 == 0
                        && header.headerLength <= header.totalLength && header.totalLength <= bytes.count,
                    "header \(header) of \(bytes.count) bytes")
        }
        if let tcp = TCPHeaders(packet) {
            require(tcp.tcpHeaderLength >= 20 && tcp.tcpHeaderLength <= 60 && tcp.payloadLength >= 0
                        && tcp.totalLength <= bytes.count, "TCP headers \(tcp)")
        }
        let folded = bytes.withUnsafeBytes { ~IPv4Packet.fold(IPv4Packet.onesComplementSum($0)) }
        require(folded == IPv4Packet.checksum(bytes), "the two checksum routines disagree")

        let settings = VirtualNetwork.Settings()
        var network = VirtualNetwork(settings: settings, localIP: localIP, networkID: FuzzFixtures.network)
        let now = Timestamp(nanoseconds: 5_000_000_000)
        switch network.fromDevice(packet, now: now) {
        case .send(let sent, let destination):
            guard case .success(let header) = parsed else { return require(false, "sent a packet that does not parse") }
            require(sent == packet && header.source == localIP && settings.prefix.contains(header.destination),
                    "sent a packet from \(header.source) to \(header.destination)")
            require(destination == Address.forVirtualIP(header.destination, network: FuzzFixtures.network),
                    "sent to the wrong ring address")
            // The destination is absent: the ICMP the host gets back.
            let error = RoutingError(code: .absentDestination, destination: destination, payloadType: .data,
                                     reporter: WireSamples.c)
            if let message = network.undeliverable(error, now: now) {
                PacketSamples.checkUnreachable(message, from: header.destination, to: header.source, quoting: bytes)
            }
        case .write(let message):
            guard case .success(let header) = parsed else { return require(false, "ICMP for a packet that does not parse") }
            PacketSamples.checkUnreachable(message, from: header.destination, to: header.source, quoting: bytes)
        case .drop(let reason):
            require(!reason.isEmpty, "a drop without a reason")
        }

        var receiver = VirtualNetwork(settings: settings, localIP: localIP, networkID: FuzzFixtures.network)
        let claimed: Address
        if case .success(let header) = parsed, flags & 1 == 0 {
            claimed = Address.forVirtualIP(header.source, network: FuzzFixtures.network)
        } else {
            claimed = FuzzFixtures.bob.address
        }
        switch receiver.fromOverlay(packet, source: claimed, now: now) {
        case .write(let written):
            guard case .success(let header) = parsed else { return require(false, "wrote a packet that does not parse") }
            require(written == packet && header.destination == localIP
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
            ("ipv6", [0, 0x60, 0, 0, 0, 0, 8, 17, 64]),
        ]
    }
}
