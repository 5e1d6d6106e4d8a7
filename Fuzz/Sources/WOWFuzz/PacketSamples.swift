import NIOCore
import WOWKit

/// IP packets for seeds and checks: TCP with options, UDP, ICMP, between two virtual IPs (IPv4, and UDP and
/// ICMPv6 over IPv6).
enum PacketSamples {
    static let local: UInt32 = 0x6440_0001   // 100.64.0.1, alice
    static let remote: UInt32 = 0x6440_0002  // 100.64.0.2, bob
    static let local6 = VirtualIP("fd77:6f77::1")!
    static let remote6 = VirtualIP("fd77:6f77::2")!

    /// UDP over IPv6 (checksum left zero: the virtual network does not check it).
    static func udp6(payload: [UInt8], source: VirtualIP = local6, destination: VirtualIP = remote6) -> [UInt8] {
        let udp = [0x30, 0x39, 0, 53] + bytes(UInt16(8 + payload.count)) + [0, 0] + payload
        return [0x60, 0, 0, 0] + bytes(UInt16(udp.count)) + [17, 64] + source.bytes + destination.bytes + udp
    }

    /// TCP/IPv6 with a 32-byte TCP header (checksum left zero: the offload paths set or complete it).
    static func tcp6(payload: [UInt8], flags: UInt8 = 0x18, source: VirtualIP = local6, destination: VirtualIP = remote6) -> [UInt8] {
        var tcp: [UInt8] = bytes(UInt16(40000)) + bytes(UInt16(5201)) + bytes(UInt32(1000)) + bytes(UInt32(1))
        tcp += [0x80, flags] + bytes(UInt16(0xFFFF)) + [0, 0, 0, 0] + [1, 1, 8, 10] + bytes(UInt32(7)) + [0, 0, 0, 2]
        tcp += payload
        return [0x60, 0, 0, 0] + bytes(UInt16(tcp.count)) + [6, 64] + source.bytes + destination.bytes + tcp
    }

    /// An ICMPv6 echo request (checksum left zero).
    static func ping6(source: VirtualIP = local6, destination: VirtualIP = remote6) -> [UInt8] {
        [0x60, 0, 0, 0, 0, 8, 58, 64] + source.bytes + destination.bytes + [128, 0, 0, 0, 0, 1, 0, 1]
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }

    static func sum(_ bytes: [UInt8], initial: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { IPv4Packet.onesComplementSum($0, initial: initial) }
    }

    static func ipHeader(total: Int, protocolNumber: UInt8, source: UInt32, destination: UInt32,
                         id: UInt16 = 0x1234, tos: UInt8 = 0, fragment: UInt16 = 0x4000) -> [UInt8] {
        var ip: [UInt8] = [0x45, tos] + bytes(UInt16(total)) + bytes(id) + bytes(fragment) + [64, protocolNumber, 0, 0]
        ip += bytes(source) + bytes(destination)
        let checksum = IPv4Packet.checksum(ip)
        ip[10] = UInt8(checksum >> 8)
        ip[11] = UInt8(checksum & 0xFF)
        return ip
    }

    /// TCP/IPv4 with a 32-byte TCP header (timestamps option) and a valid checksum.
    static func tcp(payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x10, source: UInt32 = local,
                    destination: UInt32 = remote) -> [UInt8] {
        var tcp: [UInt8] = bytes(UInt16(40000)) + bytes(UInt16(5201)) + bytes(sequence) + bytes(UInt32(1))
        tcp += [0x80, flags] + bytes(UInt16(0xFFFF)) + [0, 0, 0, 0]
        tcp += [1, 1, 8, 10] + bytes(UInt32(7)) + [0, 0, 0, 2]
        tcp += payload
        let pseudo = IPv4Packet.pseudoHeaderSum(source: source, destination: destination, protocolNumber: 6, length: tcp.count)
        let checksum = ~IPv4Packet.fold(sum(tcp, initial: pseudo))
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xFF)
        return ipHeader(total: 20 + tcp.count, protocolNumber: 6, source: source, destination: destination) + tcp
    }

    static func udp(payload: [UInt8], source: UInt32 = local, destination: UInt32 = remote) -> [UInt8] {
        ipHeader(total: 28 + payload.count, protocolNumber: 17, source: source, destination: destination)
            + [0x30, 0x39, 0, 53] + bytes(UInt16(8 + payload.count)) + [0, 0] + payload
    }

    /// An ICMP echo request.
    static func ping(source: UInt32 = local, destination: UInt32 = remote) -> [UInt8] {
        ipHeader(total: 36, protocolNumber: 1, source: source, destination: destination) + [8, 0, 0xF7, 0xFE, 0, 1, 0, 0]
    }

    /// Bytes that differ from one offset to the next (misplaced ones show), cut from one pattern made once: a
    /// harness that needs 64 KB of them per input spends no time making them.
    static func payload(_ count: Int, seed: Int = 0) -> ArraySlice<UInt8> {
        let start = seed & 0xFF
        return pattern[start..<(start + min(max(0, count), pattern.count - 256))]
    }

    private static let pattern: [UInt8] = (0..<(65_536 + 256)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 8)) }

    /// Checks that `packet` is a well-formed ICMP (ICMPv6 for IPv6) destination unreachable from `from` to
    /// `to`, quoting `original`'s start.
    static func checkUnreachable(_ packet: ByteBuffer, from: VirtualIP, to: VirtualIP, quoting original: [UInt8]) {
        guard case .success(let header) = IPPacket.header(of: packet) else {
            return require(false, "an ICMP message that is no IP packet: \(Array(packet.readableBytesView))")
        }
        let message = Array(packet.readableBytesView)
        require(header.source == from && header.destination == to, "ICMP from \(header.source) to \(header.destination)")
        require(header.totalLength == message.count, "ICMP header \(header)")
        if from.family == .v6 {
            require(header.protocolNumber == 58, "ICMPv6 header \(header)")
            let length = message.count - 40
            let pseudo = Array(message[8..<40]) + bytes(UInt32(length)) + [0, 0, 0, 58]
            require(IPv4Packet.checksum(pseudo + message[40...]) == 0, "ICMPv6 with a bad checksum")
            require(message[40] == 1, "ICMPv6 type \(message[40]), not unreachable")
        } else {
            require(header.protocolNumber == 1, "ICMP header \(header)")
            require(IPv4Packet.checksum(message[0..<header.headerLength]) == 0, "ICMP with a bad IP header checksum")
            require(IPv4Packet.checksum(message[header.headerLength...]) == 0, "ICMP with a bad ICMP checksum")
            require(message[header.headerLength] == 3, "ICMP type \(message[header.headerLength]), not unreachable")
        }
        let quote = Array(message[(header.headerLength + 8)...])
        require(original.starts(with: quote) && quote.count >= 20, "the ICMP quote is not the packet's start")
    }
}
