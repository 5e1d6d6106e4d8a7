import NIOCore

@testable import WOWKit

/// Crafted TCP/IPv4 packets for the segmentation and coalescing tests, and checks of their fields.
enum TCPPacket {
    static let source: UInt32 = 0x6440_0001       // 100.64.0.1
    static let destination: UInt32 = 0x6440_0002  // 100.64.0.2

    /// A TCP/IPv4 packet: 20-byte IP header (valid checksum, DF, identification `id`, `tos`, TTL 64), a TCP
    /// header of 32 bytes (NOP NOP timestamps `timestamp`) from port `sourcePort` to 5201, sequence
    /// `sequence`, acknowledgement `ack`, `flags`, window `window`, a full valid checksum; then `payload`.
    static func make(payload: [UInt8], sequence: UInt32 = 1000, ack: UInt32 = 1, flags: UInt8 = 0x10,
                     sourcePort: UInt16 = 12345, id: UInt16 = 0x1234, tos: UInt8 = 0, window: UInt16 = 0xFFFF,
                     timestamp: UInt32 = 7, source: UInt32 = TCPPacket.source,
                     destination: UInt32 = TCPPacket.destination) -> [UInt8] {
        var tcp: [UInt8] = bytes(sourcePort) + [0x14, 0x51] + bytes(sequence) + bytes(ack)
        tcp += [0x80, flags] + bytes(window) + [0, 0, 0, 0]
        tcp += [1, 1, 8, 10] + bytes(timestamp) + [0, 0, 0, 2]
        tcp += payload
        let pseudo = IPv4Packet.pseudoHeaderSum(source: source, destination: destination, protocolNumber: 6, length: tcp.count)
        let checksum = ~IPv4Packet.fold(sum(tcp, initial: pseudo))
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xFF)
        let total = 20 + tcp.count
        var ip: [UInt8] = [0x45, tos] + bytes(UInt16(total)) + bytes(id) + [0x40, 0, 64, 6, 0, 0]
        ip += bytes(source) + bytes(destination)
        let headerSum = IPv4Packet.checksum(ip)
        ip[10] = UInt8(headerSum >> 8)
        ip[11] = UInt8(headerSum & 0xFF)
        return ip + tcp
    }

    /// A UDP/IPv4 packet with `payload` (checksum zero: none).
    static func udp(payload: [UInt8]) -> [UInt8] {
        let total = 28 + payload.count
        var ip: [UInt8] = [0x45, 0] + bytes(UInt16(total)) + [0, 1, 0x40, 0, 64, 17, 0, 0] + bytes(source) + bytes(destination)
        let headerSum = IPv4Packet.checksum(ip)
        ip[10] = UInt8(headerSum >> 8)
        ip[11] = UInt8(headerSum & 0xFF)
        return ip + [0x30, 0x39, 0, 53] + bytes(UInt16(8 + payload.count)) + [0, 0] + payload
    }

    /// `count` bytes that differ from one offset to the next (so a misplaced byte shows).
    static func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 31 &+ ($0 >> 8)) }
    }

    static func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }

    static func sum(_ bytes: [UInt8], initial: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { IPv4Packet.onesComplementSum($0, initial: initial) }
    }

    // MARK: Fields of a packet (20-byte IP header)

    static func totalLength(_ packet: [UInt8]) -> Int { Int(packet[2]) << 8 | Int(packet[3]) }
    static func identification(_ packet: [UInt8]) -> UInt16 { UInt16(packet[4]) << 8 | UInt16(packet[5]) }
    static func sequence(_ packet: [UInt8]) -> UInt32 { packet[24..<28].reduce(0) { $0 << 8 | UInt32($1) } }
    static func flags(_ packet: [UInt8]) -> UInt8 { packet[33] }
    static func window(_ packet: [UInt8]) -> UInt16 { UInt16(packet[34]) << 8 | UInt16(packet[35]) }
    static func headersLength(_ packet: [UInt8]) -> Int { 20 + Int(packet[32] >> 4) * 4 }
    static func payloadOf(_ packet: [UInt8]) -> [UInt8] { Array(packet[headersLength(packet)...]) }

    /// Whether the IP header checksum verifies.
    static func ipChecksumVerifies(_ packet: [UInt8]) -> Bool { IPv4Packet.checksum(packet[0..<20]) == 0 }

    /// Whether the TCP checksum verifies once a partial one (the pseudo-header's sum in the field) is
    /// completed as the receiving kernel or card would: sum the segment from the TCP header on, store the
    /// complement.
    static func partialChecksumCompletes(_ packet: [UInt8]) -> Bool {
        var completed = packet
        let transport = Array(packet[20...])
        let checksum = ~IPv4Packet.fold(sum(transport))
        completed[36] = UInt8(checksum >> 8)
        completed[37] = UInt8(checksum & 0xFF)
        return fullChecksumVerifies(completed)
    }

    /// Whether the TCP checksum (pseudo-header included) verifies as it is.
    static func fullChecksumVerifies(_ packet: [UInt8]) -> Bool {
        let transport = Array(packet[20...])
        let pseudo = IPv4Packet.pseudoHeaderSum(source: source, destination: destination, protocolNumber: 6,
                                                length: transport.count)
        return IPv4Packet.fold(sum(transport, initial: pseudo)) == 0xFFFF
    }
}
