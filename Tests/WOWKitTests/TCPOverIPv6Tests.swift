import NIOCore
import XCTest

@testable import WOWKit

/// TCP super-segments over IPv6: read, cut into segments, and put back together, as over IPv4.
final class TCPOverIPv6Tests: XCTestCase {
    static let source = VirtualIP("fd77:6f77::1")!
    static let destination = VirtualIP("fd77:6f77::2")!

    /// A TCP/IPv6 packet with a 32-byte TCP header (timestamps), a full valid checksum, then `payload`.
    static func make(payload: [UInt8], sequence: UInt32 = 1000, flags: UInt8 = 0x10) -> [UInt8] {
        var tcp: [UInt8] = [0x30, 0x39, 0x14, 0x51] + TCPPacket.bytes(sequence) + TCPPacket.bytes(UInt32(1))
        tcp += [0x80, flags, 0xFF, 0xFF, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 2] + payload
        let checksum = ~IPv4Packet.fold(TCPPacket.sum(tcp, initial: pseudoSum(length: tcp.count)))
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xFF)
        return [0x60, 0, 0, 0] + TCPPacket.bytes(UInt16(tcp.count)) + [6, 64] + source.bytes + destination.bytes + tcp
    }

    static func pseudoSum(length: Int) -> UInt64 {
        TCPPacket.sum(source.bytes + destination.bytes + TCPPacket.bytes(UInt32(length)) + [0, 0, 0, 6])
    }

    /// Whether a segment's partial checksum, completed as the receiving kernel would, verifies.
    static func partialChecksumCompletes(_ packet: [UInt8]) -> Bool {
        var tcp = Array(packet[40...])
        let checksum = ~IPv4Packet.fold(TCPPacket.sum(tcp))
        tcp[16] = UInt8(checksum >> 8)
        tcp[17] = UInt8(checksum & 0xFF)
        return IPv4Packet.fold(TCPPacket.sum(tcp, initial: pseudoSum(length: tcp.count))) == 0xFFFF
    }

    func testHeadersOfTCPOverIPv6() throws {
        let packet = Self.make(payload: Array(repeating: 1, count: 100), flags: 0x18)
        let tcp = try XCTUnwrap(TCPHeaders(ByteBuffer(bytes: packet)))
        XCTAssertTrue(tcp.isIPv6)
        XCTAssertEqual(tcp.ipHeaderLength, 40)
        XCTAssertEqual(tcp.tcpHeaderLength, 32)
        XCTAssertEqual(tcp.payloadLength, 100)
        XCTAssertEqual(tcp.source, Self.source)
        XCTAssertEqual(tcp.ports, 12345 << 16 | 5201, "source port, then destination port")
        XCTAssertEqual(tcp.sequence, 1000)
        XCTAssertEqual(tcp.partialChecksum(transportLength: 132), IPv4Packet.fold(Self.pseudoSum(length: 132)))
        // Behind an extension header (next header 0, hop-by-hop), TCP is not read.
        var extended = packet
        extended[6] = 0
        XCTAssertNil(TCPHeaders(ByteBuffer(bytes: extended)))
    }

    func testASuperSegmentIsCutAndPutBackTogether() throws {
        let payload = TCPPacket.payload(5 * 1208 - 100)
        let original = Self.make(payload: payload, sequence: 5000, flags: 0x18)
        var scratch = ByteBuffer()
        var segments: [[UInt8]] = []
        XCTAssertTrue(TCPSegmenter.segments(of: ByteBuffer(bytes: original), segmentSize: 1208, scratch: &scratch) {
            segments.append(Array($0.readableBytesView))
        })
        XCTAssertEqual(segments.count, 5)
        var offset = 0
        for (index, segment) in segments.enumerated() {
            let length = min(1208, payload.count - offset)
            XCTAssertEqual(Int(segment[4]) << 8 | Int(segment[5]), 32 + length, "IPv6 payload length of segment \(index)")
            XCTAssertEqual(segment.count, 72 + length)
            XCTAssertEqual(TCPPacket.sequence(Array(segment[20...])), 5000 + UInt32(offset), "sequence of segment \(index)")
            XCTAssertEqual(Array(segment[72...]), Array(payload[offset..<(offset + length)]))
            XCTAssertEqual(segment[53] & TCPHeaders.psh != 0, index == 4, "PSH on the last only")
            XCTAssertTrue(Self.partialChecksumCompletes(segment), "segment \(index)'s partial checksum")
            offset += length
        }
        var coalescer = TCPCoalescer(mtu: 1280)
        var written: [([UInt8], Int?)] = []
        for segment in segments {
            coalescer.add(ByteBuffer(bytes: segment)) { written.append((Array($0.readableBytesView), $1)) }
        }
        coalescer.flush { written.append((Array($0.readableBytesView), $1)) }
        XCTAssertEqual(written.count, 1, "one super-segment")
        let (merged, segmentSize) = try XCTUnwrap(written.first)
        XCTAssertEqual(segmentSize, 1208)
        XCTAssertEqual(Int(merged[4]) << 8 | Int(merged[5]), 32 + payload.count, "its payload length")
        var comparable = merged, expected = original
        for index in [56, 57] { comparable[index] = 0; expected[index] = 0 }  // the checksum: partial in the merge
        XCTAssertEqual(comparable, expected, "the original super-segment again")
        // A segment with another flow label starts a super-segment of its own.
        var labelled = segments[1]
        labelled[3] = 9
        var other = TCPCoalescer(mtu: 1280)
        var count = 0
        for segment in [segments[0], labelled] { other.add(ByteBuffer(bytes: segment)) { _, _ in count += 1 } }
        other.flush { _, _ in count += 1 }
        XCTAssertEqual(count, 2)
    }
}
