import NIOCore
import XCTest

@testable import WOWKit

/// Cutting TCP super-segments into MTU-sized segments, checked field by field on crafted packets.
final class TCPSegmenterTests: XCTestCase {
    private func segments(of packet: [UInt8], segmentSize: Int) -> (isTCP: Bool, segments: [[UInt8]]) {
        var scratch = ByteBuffer()
        var segments: [[UInt8]] = []
        let isTCP = TCPSegmenter.segments(of: ByteBuffer(bytes: packet), segmentSize: segmentSize, scratch: &scratch) {
            segments.append(Array($0.readableBytesView))
        }
        return (isTCP, segments)
    }

    func testASuperSegmentIsCutAsTheKernelsSegmentationWould() {
        let payload = TCPPacket.payload(10_000)
        // CWR PSH ACK FIN, a sequence number about to wrap.
        let superSegment = TCPPacket.make(payload: payload, sequence: 0xFFFF_F000, flags: 0x80 | 0x18 | 0x01, id: 0xFFFE)
        let (isTCP, pieces) = segments(of: superSegment, segmentSize: 1208)
        XCTAssertTrue(isTCP)
        XCTAssertEqual(pieces.map { $0.count - 52 }, Array(repeating: 1208, count: 8) + [336], "MSS-sized, the last shorter")
        var joined: [UInt8] = []
        for (index, piece) in pieces.enumerated() {
            XCTAssertEqual(TCPPacket.totalLength(piece), piece.count, "total length of \(index)")
            XCTAssertEqual(TCPPacket.identification(piece), 0xFFFE &+ UInt16(index), "identification advances (wrapping)")
            XCTAssertTrue(TCPPacket.ipChecksumVerifies(piece), "IP header checksum of \(index)")
            XCTAssertEqual(TCPPacket.sequence(piece), 0xFFFF_F000 &+ UInt32(index * 1208), "sequence number (wrapping)")
            let flags = TCPPacket.flags(piece)
            XCTAssertEqual(flags & 0x80 != 0, index == 0, "CWR on the first only")
            XCTAssertEqual(flags & 0x08 != 0, index == pieces.count - 1, "PSH on the last only")
            XCTAssertEqual(flags & 0x01 != 0, index == pieces.count - 1, "FIN on the last only")
            XCTAssertEqual(flags & 0x10, 0x10, "ACK on all")
            XCTAssertTrue(TCPPacket.partialChecksumCompletes(piece), "partial TCP checksum of \(index)")
            XCTAssertEqual(Array(piece[0..<2] + piece[6..<10] + piece[12..<20]),
                           Array(superSegment[0..<2] + superSegment[6..<10] + superSegment[12..<20]),
                           "version, TOS, DF, TTL, protocol, addresses as in the super-segment")
            XCTAssertEqual(Array(piece[20..<24]), Array(superSegment[20..<24]), "ports")
            XCTAssertEqual(Array(piece[28..<33]), Array(superSegment[28..<33]), "acknowledgement, data offset")
            XCTAssertEqual(Array(piece[34..<36]), Array(superSegment[34..<36]), "window")
            XCTAssertEqual(Array(piece[40..<52]), Array(superSegment[40..<52]), "options (timestamps)")
            joined += TCPPacket.payloadOf(piece)
        }
        XCTAssertEqual(joined, payload, "the payload in order, nothing lost or repeated")
    }

    func testAnExactMultipleEndsWithAFullSegment() {
        let (_, pieces) = segments(of: TCPPacket.make(payload: TCPPacket.payload(3 * 1000), flags: 0x18), segmentSize: 1000)
        XCTAssertEqual(pieces.map(\.count), [1052, 1052, 1052])
        XCTAssertEqual(pieces.map { TCPPacket.flags($0) }, [0x10, 0x10, 0x18], "PSH on the last only")
    }

    func testAPacketWithinOneSegmentIsHandedOnAsItIs() {
        let packet = TCPPacket.make(payload: TCPPacket.payload(500), flags: 0x18)
        let (isTCP, pieces) = segments(of: packet, segmentSize: 1208)
        XCTAssertTrue(isTCP)
        XCTAssertEqual(pieces, [packet])
    }

    func testTheHeadersOfATCPPacketOverIPv4AreReadWithOrWithoutItsIPHeaderReadFirst() throws {
        let bytes = ByteBuffer(bytes: TCPPacket.make(payload: TCPPacket.payload(100), sequence: 0xFEDC_BA98, flags: 0x18,
                                                     sourcePort: 4242))
        let tcp = try XCTUnwrap(TCPHeaders(bytes))
        XCTAssertFalse(tcp.isIPv6)
        XCTAssertEqual(tcp.ipHeaderLength, 20)
        XCTAssertEqual(tcp.tcpHeaderLength, 32)
        XCTAssertEqual(tcp.totalLength, 152)
        XCTAssertEqual(tcp.payloadLength, 100)
        XCTAssertEqual(tcp.flags, 0x18)
        XCTAssertEqual(tcp.ports, 4242 << 16 | 5201, "source port, then destination port")
        XCTAssertEqual(tcp.sequence, 0xFEDC_BA98)
        XCTAssertEqual(tcp.source, VirtualIP(TCPPacket.source))
        XCTAssertEqual(tcp.destination, VirtualIP(TCPPacket.destination))
        guard case .success(let ip) = IPPacket.header(of: bytes) else { return XCTFail("an IPv4 header") }
        let again = try XCTUnwrap(TCPHeaders(bytes, ip: ip))
        XCTAssertEqual([again.ipHeaderLength, again.tcpHeaderLength, again.totalLength, Int(again.flags), Int(again.ports),
                        Int(again.sequence)],
                       [tcp.ipHeaderLength, tcp.tcpHeaderLength, tcp.totalLength, Int(tcp.flags), Int(tcp.ports), Int(tcp.sequence)])
        // A header read from a longer packet does not fit this one: nothing read (not past its end).
        let longer = ByteBuffer(bytes: TCPPacket.make(payload: TCPPacket.payload(1_000)))
        guard case .success(let longerIP) = IPPacket.header(of: longer) else { return XCTFail("an IPv4 header") }
        XCTAssertNil(TCPHeaders(bytes, ip: longerIP))
        // Not TCP, or an IP header that says the TCP header is cut short: nothing read.
        let udp = ByteBuffer(bytes: TCPPacket.udp(payload: [1, 2, 3]))
        guard case .success(let udpIP) = IPPacket.header(of: udp) else { return XCTFail("an IPv4 header") }
        XCTAssertNil(TCPHeaders(udp, ip: udpIP))
        var short = TCPPacket.make(payload: [])
        short[2] = 0
        short[3] = 39  // total length 39: the 20-byte IP header and 19 bytes of TCP
        XCTAssertNil(TCPHeaders(ByteBuffer(bytes: short)))
    }

    func testWhatIsNoTCPSuperSegmentIsRefusedWithoutAnyOutput() {
        XCTAssertEqual(segments(of: TCPPacket.udp(payload: TCPPacket.payload(3000)), segmentSize: 1000).isTCP, false, "UDP")
        XCTAssertEqual(segments(of: TCPPacket.make(payload: []), segmentSize: 1000).isTCP, false, "no payload")
        XCTAssertEqual(segments(of: TCPPacket.make(payload: TCPPacket.payload(3000)), segmentSize: 0).isTCP, false, "size 0")
        var fragment = TCPPacket.make(payload: TCPPacket.payload(3000))
        fragment[6] |= 0x20
        XCTAssertEqual(segments(of: fragment, segmentSize: 1000).isTCP, false, "an IP fragment")
        XCTAssertEqual(segments(of: Array(TCPPacket.make(payload: TCPPacket.payload(3000)).prefix(1000)), segmentSize: 500).isTCP,
                       false, "shorter than its total length")
        XCTAssertTrue(segments(of: TCPPacket.udp(payload: [1]), segmentSize: 1).segments.isEmpty)
    }

    func testSegmentsKeptByTheReceiverStayIntactWhileTheScratchIsReused() {
        let payload = TCPPacket.payload(5_000, seed: 3)
        var scratch = ByteBuffer()
        var kept: [ByteBuffer] = []
        TCPSegmenter.segments(of: ByteBuffer(bytes: TCPPacket.make(payload: payload)), segmentSize: 1_000, scratch: &scratch) {
            kept.append($0)
        }
        XCTAssertEqual(kept.count, 5)
        XCTAssertEqual(kept.flatMap { TCPPacket.payloadOf(Array($0.readableBytesView)) }, payload,
                       "each kept segment still holds its own bytes (copy on write)")
        XCTAssertEqual(kept.map { TCPPacket.sequence(Array($0.readableBytesView)) }, [1000, 2000, 3000, 4000, 5000])
    }

    func testAPacketAfterItsTotalLengthPaddingIsIgnored() {
        let payload = TCPPacket.payload(2_500)
        let padded = TCPPacket.make(payload: payload) + [0xEE, 0xEE, 0xEE]
        let (_, pieces) = segments(of: padded, segmentSize: 1_000)
        XCTAssertEqual(pieces.flatMap(TCPPacket.payloadOf), payload, "the padding is no payload")
    }
}

extension TCPSegmenterTests {
    func testPiecesOfSeveralSegmentsAreSmallerSuperSegments() {
        var scratch = ByteBuffer()
        var pieces: [[UInt8]] = []
        let payload = TCPPacket.payload(10 * 1000 + 10)
        TCPSegmenter.segments(of: ByteBuffer(bytes: TCPPacket.make(payload: payload, flags: 0x18, id: 100)), segmentSize: 1000,
                              segmentsPerPacket: 4, scratch: &scratch) { pieces.append(Array($0.readableBytesView)) }
        XCTAssertEqual(pieces.map { TCPPacket.payloadOf($0).count }, [4000, 4000, 2010], "whole segments per piece")
        XCTAssertEqual(pieces.map(TCPPacket.identification), [100, 104, 108], "identification advances per segment")
        XCTAssertEqual(pieces.map(TCPPacket.sequence), [1000, 5000, 9000])
        XCTAssertEqual(pieces.map(TCPPacket.flags), [0x10, 0x10, 0x18])
        XCTAssertTrue(pieces.allSatisfy { TCPPacket.ipChecksumVerifies($0) && TCPPacket.partialChecksumCompletes($0) })
        XCTAssertEqual(pieces.flatMap(TCPPacket.payloadOf), payload)
    }
}
