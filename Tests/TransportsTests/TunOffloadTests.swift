import NIOCore
@testable import Transports
import WOWKit
import XCTest

/// The TUN device's offload handling without a device: what the kernel would hand up (a `VirtioNetHeader`,
/// then the packet) and what the device writes.
final class TunOffloadTests: XCTestCase {
    static let source: UInt32 = 0x6440_0001       // 100.64.0.1
    static let destination: UInt32 = 0x6440_0002  // 100.64.0.2

    /// An IPv4 packet: a 20-byte header (valid checksum, DF, identification 0x1234) and `transport`.
    static func ipv4(protocolNumber: UInt8, transport: [UInt8]) -> [UInt8] {
        let total = 20 + transport.count
        var header: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, protocolNumber, 0, 0]
        for address in [source, destination] { header += withUnsafeBytes(of: address.bigEndian, Array.init) }
        let sum = IPv4Packet.checksum(header)
        header[10] = UInt8(sum >> 8)
        header[11] = UInt8(sum & 0xFF)
        return header + transport
    }

    /// A TCP/IPv4 packet with a 32-byte TCP header (timestamps option), sequence `sequence`, `flags`, and the
    /// checksum field holding the full checksum (`partial` false) or the pseudo-header's sum (true).
    static func tcp(payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x18, partial: Bool = false) -> [UInt8] {
        var tcp: [UInt8] = [0x30, 0x39, 0x14, 0x51]                       // ports 12345 -> 5201
        tcp += withUnsafeBytes(of: sequence.bigEndian, Array.init)
        tcp += [0, 0, 0, 1, 0x80, flags, 0xFF, 0xFF, 0, 0, 0, 0]          // ack 1, data offset 8 words
        tcp += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]                      // NOP NOP timestamps
        tcp += payload
        let pseudo = pseudoHeaderSum(protocolNumber: 6, length: tcp.count)
        let value = partial ? IPv4Packet.fold(pseudo) : ~IPv4Packet.fold(sum(tcp, initial: pseudo))
        tcp[16] = UInt8(value >> 8)
        tcp[17] = UInt8(value & 0xFF)
        return ipv4(protocolNumber: 6, transport: tcp)
    }

    static func udp(payload: [UInt8], partial: Bool) -> [UInt8] {
        var udp: [UInt8] = [0x30, 0x39, 0x00, 0x35, UInt8((8 + payload.count) >> 8), UInt8((8 + payload.count) & 0xFF), 0, 0]
        udp += payload
        let pseudo = pseudoHeaderSum(protocolNumber: 17, length: udp.count)
        let value = partial ? IPv4Packet.fold(pseudo) : ~IPv4Packet.fold(sum(udp, initial: pseudo))
        udp[6] = UInt8(value >> 8)
        udp[7] = UInt8(value & 0xFF)
        return ipv4(protocolNumber: 17, transport: udp)
    }

    static func pseudoHeaderSum(protocolNumber: UInt8, length: Int) -> UInt64 {
        IPv4Packet.pseudoHeaderSum(source: source, destination: destination, protocolNumber: protocolNumber, length: length)
    }

    static func sum(_ bytes: [UInt8], initial: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { IPv4Packet.onesComplementSum($0, initial: initial) }
    }

    /// Whether the TCP or UDP checksum of an IPv4 packet (20-byte header) verifies.
    static func transportChecksumVerifies(_ packet: [UInt8]) -> Bool {
        let transport = Array(packet[20...])
        return IPv4Packet.fold(sum(transport, initial: pseudoHeaderSum(protocolNumber: packet[9], length: transport.count))) == 0xFFFF
    }

    /// What `fromHost` hands up for `packet` read behind `header`: the packets and their segment sizes.
    static func fromHost(_ header: VirtioNetHeader, _ packet: [UInt8]) -> (packets: [[UInt8]], segmentSizes: [Int?], dropped: String?) {
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: VirtioNetHeader.size) { bytes in
            header.write(to: bytes)
            return VirtioNetHeader.size
        }
        buffer.writeBytes(packet)
        var packets: [[UInt8]] = []
        var sizes: [Int?] = []
        let dropped = TunOffload.fromHost(buffer) { packet, segmentSize in
            packets.append(Array(packet.readableBytesView))
            sizes.append(segmentSize)
        }
        return (packets, sizes, dropped)
    }

    func testOnesComplementSumMatchesTheByteWiseChecksum() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            XCTAssertEqual(~IPv4Packet.fold(Self.sum(bytes)), IPv4Packet.checksum(bytes), "length \(length)")
        }
        let ones = [UInt8](repeating: 0xFF, count: 65_536)
        XCTAssertEqual(IPv4Packet.fold(Self.sum(ones)), 0xFFFF, "carries are not lost over 64 KB of 0xFF")
    }

    func testHeaderRoundTrip() {
        let header = VirtioNetHeader(flags: 1, gsoType: 0x81, headerLength: 52, gsoSize: 1208, checksumStart: 20, checksumOffset: 16)
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 10) { bytes in
            header.write(to: bytes)
            return 10
        }
        buffer.writeBytes([0xAA])
        XCTAssertEqual(VirtioNetHeader.read(from: &buffer), header)
        XCTAssertEqual(buffer.readableBytes, 1, "the header's 10 bytes were consumed")
    }

    func testPartialChecksumsOfSinglePacketsAreCompleted() {
        let payload = (0..<333).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let needsChecksum = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 20, checksumOffset: 16)
        let tcp = Self.fromHost(needsChecksum, Self.tcp(payload: payload, partial: true))
        XCTAssertNil(tcp.dropped)
        XCTAssertEqual(tcp.packets, [Self.tcp(payload: payload)], "TCP: the full checksum, nothing else changed")
        XCTAssertTrue(Self.transportChecksumVerifies(tcp.packets[0]))

        var udpHeader = needsChecksum
        udpHeader.checksumOffset = 6
        let udp = Self.fromHost(udpHeader, Self.udp(payload: payload, partial: true))
        XCTAssertEqual(udp.packets, [Self.udp(payload: payload, partial: false)])
        XCTAssertTrue(Self.transportChecksumVerifies(udp.packets[0]))

        let plain = Self.tcp(payload: payload)
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(), plain).packets, [plain], "a complete packet passes unchanged")
    }

    func testMalformedReadsAreDroppedWithAReason() {
        XCTAssertEqual(TunOffload.fromHost(ByteBuffer(bytes: [1, 0, 0])) { _, _ in XCTFail("nothing to deliver") },
                       "offload_truncated")
        let packet = Self.tcp(payload: [1, 2, 3])
        let outside = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(packet.count - 1), checksumOffset: 16)
        XCTAssertEqual(Self.fromHost(outside, packet).dropped, "offload_bad_checksum_offset")
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(gsoType: 3, gsoSize: 1000), packet).dropped, "offload_unexpected_gso",
                       "UDP segmentation was never switched on")
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(gsoType: 4, gsoSize: 1000), Self.tcp(payload: Array(repeating: 1, count: 3000))).dropped,
                       "offload_bad_super_segment", "a TCP/IPv6 super-segment that is IPv4")
        let udp = Self.udp(payload: Array(repeating: 9, count: 3000), partial: false)
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(gsoType: 1, gsoSize: 1000), udp).dropped,
                       "offload_bad_super_segment", "a 'TCP super-segment' that is not TCP cannot be cut")
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(gsoType: 1, gsoSize: 0), Self.tcp(payload: Array(repeating: 1, count: 3000))).dropped,
                       "offload_bad_super_segment", "segment size 0")
        XCTAssertEqual(Self.fromHost(VirtioNetHeader(gsoType: 1, gsoSize: 1000), Self.tcp(payload: [])).dropped,
                       "offload_bad_super_segment", "no payload to cut")
    }

    /// A super-segment goes up whole with its segment size: the virtual interface cuts it into segments
    /// (`TCPSegmenter`), one overlay packet each.
    func testASuperSegmentIsHandedUpWholeWithItsSegmentSize() {
        let packet = Self.tcp(payload: Array(repeating: 7, count: 60_000), partial: true)
        let result = Self.fromHost(VirtioNetHeader(flags: 1, gsoType: 0x81, headerLength: 52, gsoSize: 1208,
                                                   checksumStart: 20, checksumOffset: 16), packet)
        XCTAssertNil(result.dropped)
        XCTAssertEqual(result.packets, [packet], "unchanged")
        XCTAssertEqual(result.segmentSizes, [1208])
        let single = Self.fromHost(VirtioNetHeader(), Self.tcp(payload: [1, 2, 3]))
        XCTAssertEqual(single.segmentSizes, [nil], "a single packet has none")
    }

    func testTCPIsWrittenWithAPartialChecksumAndAsASuperSegmentAboveTheMTU() throws {
        let small = ByteBuffer(bytes: Self.tcp(payload: Array(repeating: 3, count: 100)))
        let (header, partial) = TunOffload.toHost(small, mtu: 1260)
        XCTAssertEqual(header, VirtioNetHeader(flags: 1, gsoType: 0, headerLength: 0, gsoSize: 0, checksumStart: 20, checksumOffset: 16))
        XCTAssertEqual(partial, IPv4Packet.fold(Self.pseudoHeaderSum(protocolNumber: 6, length: 132)))

        let large = ByteBuffer(bytes: Self.tcp(payload: Array(repeating: 3, count: 20_000), flags: 0x80 | 0x10))
        let (superHeader, superPartial) = TunOffload.toHost(large, mtu: 1260)
        XCTAssertEqual(superHeader, VirtioNetHeader(flags: 1, gsoType: 0x81, headerLength: 52, gsoSize: 1208,
                                                    checksumStart: 20, checksumOffset: 16), "segments of MTU - headers, ECN for CWR")
        XCTAssertEqual(superPartial, IPv4Packet.fold(Self.pseudoHeaderSum(protocolNumber: 6, length: 20_032)))

        // Segments put back together: the segment size they came in, whatever the MTU.
        let merged = ByteBuffer(bytes: Self.tcp(payload: Array(repeating: 3, count: 3 * 1000 + 10), flags: 0x18))
        XCTAssertEqual(TunOffload.toHost(merged, mtu: 1260, segmentSize: 1000).header,
                       VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 52, gsoSize: 1000, checksumStart: 20, checksumOffset: 16))
        let one = ByteBuffer(bytes: Self.tcp(payload: Array(repeating: 3, count: 1000)))
        XCTAssertEqual(TunOffload.toHost(one, mtu: 1260, segmentSize: 1000).header.gsoType, 0, "one segment is no super-segment")
    }

    func testOtherPacketsAreWrittenAsTheyAre() {
        let empty = VirtioNetHeader()
        for packet in [Self.udp(payload: [1, 2, 3], partial: false),
                       Self.ipv4(protocolNumber: 1, transport: [8, 0, 0, 0, 0, 0, 0, 0]),
                       Array(Self.tcp(payload: [1]).prefix(30)),  // truncated: shorter than its total length
                       [0x60] + Array(repeating: 0, count: 39)] {
            let (header, partial) = TunOffload.toHost(ByteBuffer(bytes: packet), mtu: 1260)
            XCTAssertEqual(header, empty)
            XCTAssertNil(partial)
        }
        var fragment = Self.tcp(payload: Array(repeating: 1, count: 100))
        fragment[6] = 0x20  // more fragments
        XCTAssertNil(TunOffload.toHost(ByteBuffer(bytes: fragment), mtu: 1260).partialChecksum, "a fragment is not summed")
    }

    // MARK: - IPv6

    /// A TCP/IPv6 packet from fd77:6f77::1 to fd77:6f77::2 with a 32-byte TCP header, the checksum field full
    /// or partial.
    static func tcp6(payload: [UInt8], flags: UInt8 = 0x18, partial: Bool = false) -> [UInt8] {
        var tcp: [UInt8] = [0x30, 0x39, 0x14, 0x51, 0, 0, 0x03, 0xE8, 0, 0, 0, 1, 0x80, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        tcp += [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] + payload
        let pseudo = sum(source6 + destination6 + withUnsafeBytes(of: UInt32(tcp.count).bigEndian, Array.init) + [0, 0, 0, 6])
        let value = partial ? IPv4Packet.fold(pseudo) : ~IPv4Packet.fold(sum(tcp, initial: pseudo))
        tcp[16] = UInt8(value >> 8)
        tcp[17] = UInt8(value & 0xFF)
        return [0x60, 0, 0, 0, UInt8(tcp.count >> 8), UInt8(tcp.count & 0xFF), 6, 64] + source6 + destination6 + tcp
    }

    static let source6 = VirtualIP("fd77:6f77::1")!.bytes
    static let destination6 = VirtualIP("fd77:6f77::2")!.bytes

    func testIPv6SuperSegmentsGoBothWays() throws {
        let payload = Array(repeating: UInt8(7), count: 5 * 1208)
        let read = Self.fromHost(VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 72, gsoSize: 1208, checksumStart: 40,
                                                 checksumOffset: 16), Self.tcp6(payload: payload, partial: true))
        XCTAssertNil(read.dropped)
        XCTAssertEqual(read.segmentSizes, [1208], "handed up whole with its segment size")
        let whole = ByteBuffer(bytes: Self.tcp6(payload: payload))
        let (header, partial) = TunOffload.toHost(whole, mtu: 1280, segmentSize: 1208)
        XCTAssertEqual(header, VirtioNetHeader(flags: 1, gsoType: 4, headerLength: 72, gsoSize: 1208, checksumStart: 40,
                                               checksumOffset: 16), "written as a TCP/IPv6 super-segment")
        let expected = Self.tcp6(payload: payload, partial: true)
        XCTAssertEqual(partial, UInt16(expected[56]) << 8 | UInt16(expected[57]), "the pseudo-header's sum, IPv6's")
        let (single, _) = TunOffload.toHost(ByteBuffer(bytes: Self.tcp6(payload: [1, 2, 3])), mtu: 1280)
        XCTAssertEqual(single.gsoType, 0)
        XCTAssertEqual(single.checksumStart, 40)
    }

    func testAZeroUDPChecksumOverIPv6IsSentAsAllOnes() {
        // A UDP/IPv6 packet whose completed checksum is 0: the payload makes the sum 0xFFFF.
        var udp: [UInt8] = [0, 0, 0, 0, 0, 10, 0, 0, 0, 0]
        let pseudo = Self.sum(Self.source6 + Self.destination6 + [0, 0, 0, 10, 0, 0, 0, 17])
        let partial = IPv4Packet.fold(pseudo)
        udp[6] = UInt8(partial >> 8)
        udp[7] = UInt8(partial & 0xFF)
        let rest = ~IPv4Packet.fold(Self.sum(udp))  // the two bytes that bring the sum to all ones
        udp[8] = UInt8(rest >> 8)
        udp[9] = UInt8(rest & 0xFF)
        let packet = [0x60, 0, 0, 0, 0, 10, 17, 64] + Self.source6 + Self.destination6 + udp
        let read = Self.fromHost(VirtioNetHeader(flags: 1, checksumStart: 40, checksumOffset: 6), packet)
        XCTAssertEqual(read.packets.first?[46...47], [0xFF, 0xFF], "zero means 'no checksum', which IPv6 forbids")
    }
}
