import NIOCore
import XCTest

@testable import WOWKit

/// Putting TCP segments back together for the host, on crafted packets: what merges, what never does, and
/// what order comes out.
final class TCPCoalescerTests: XCTestCase {
    /// What the coalescer wrote, in order: the packet and its segment size (nil: a single packet).
    private struct Output: Equatable {
        var packet: [UInt8]
        var segmentSize: Int?
    }

    private var coalescer = TCPCoalescer()
    private var written: [Output] = []

    private func add(_ packet: [UInt8]) {
        coalescer.add(ByteBuffer(bytes: packet)) { written.append(Output(packet: Array($0.readableBytesView), segmentSize: $1)) }
    }

    private func flush() {
        coalescer.flush { written.append(Output(packet: Array($0.readableBytesView), segmentSize: $1)) }
        XCTAssertFalse(coalescer.isHolding)
    }

    /// The segments of `payload` from `sequence` on, `size` bytes each, as the segmenter cuts them.
    private func segments(_ payload: [UInt8], size: Int = 1208, sequence: UInt32 = 1000, flags: UInt8 = 0x18,
                          sourcePort: UInt16 = 12345) -> [[UInt8]] {
        var scratch = ByteBuffer()
        var pieces: [[UInt8]] = []
        let superSegment = TCPPacket.make(payload: payload, sequence: sequence, flags: flags, sourcePort: sourcePort)
        TCPSegmenter.segments(of: ByteBuffer(bytes: superSegment), segmentSize: size, scratch: &scratch) {
            pieces.append(Array($0.readableBytesView))
        }
        return pieces
    }

    func testTheSegmentsOfASuperSegmentAreWrittenAsOneAgain() {
        let payload = TCPPacket.payload(60_000)
        let pieces = segments(payload)
        XCTAssertEqual(pieces.count, 50)
        for piece in pieces { add(piece) }
        XCTAssertTrue(written.isEmpty, "held until the flush")
        XCTAssertTrue(coalescer.isHolding)
        flush()
        XCTAssertEqual(written.count, 1)
        let merged = written[0].packet
        XCTAssertEqual(written[0].segmentSize, 1208, "the segment size the host's TCP sees")
        XCTAssertEqual(TCPPacket.totalLength(merged), merged.count)
        XCTAssertEqual(merged.count, 52 + 60_000)
        XCTAssertTrue(TCPPacket.ipChecksumVerifies(merged), "IP header checksum")
        XCTAssertEqual(TCPPacket.sequence(merged), 1000, "the first segment's sequence number")
        XCTAssertEqual(TCPPacket.flags(merged), 0x18, "the last segment's PSH")
        XCTAssertEqual(TCPPacket.payloadOf(merged), payload, "every byte, in order")
        XCTAssertEqual(Array(merged[40..<52]), Array(pieces[0][40..<52]), "options")
        XCTAssertEqual(coalescer.segmentsMerged, 49)
        XCTAssertEqual(coalescer.superSegmentsWritten, 1)
    }

    func testPSHAndAShortSegmentEndASuperSegment() {
        var pieces = segments(TCPPacket.payload(6 * 1208), flags: 0x10)
        // PSH on the third: it ends the first super-segment.
        pieces[2] = TCPPacket.make(payload: TCPPacket.payloadOf(pieces[2]), sequence: TCPPacket.sequence(pieces[2]), flags: 0x18)
        for piece in pieces { add(piece) }
        // A short one after those: appended (it is the last), and nothing more after it.
        let tailSequence: UInt32 = 1000 + 6 * 1208
        let tail = TCPPacket.make(payload: TCPPacket.payload(100), sequence: tailSequence, flags: 0x10)
        let after = TCPPacket.make(payload: TCPPacket.payload(1208), sequence: tailSequence + 100, flags: 0x10)
        add(tail)
        add(after)
        flush()
        let lengths: [Int] = [3 * 1208, 3 * 1208 + 100, 1208]
        XCTAssertEqual(written.map { TCPPacket.payloadOf($0.packet).count }, lengths)
        XCTAssertEqual(written.map(\.segmentSize), [1208, 1208, nil])
        XCTAssertEqual(written.map { TCPPacket.flags($0.packet) }, [0x18, 0x10, 0x10])
        let sequences: [UInt32] = [1000, 1000 + 3 * 1208, 1000 + 6 * 1208 + 100]
        XCTAssertEqual(written.map { TCPPacket.sequence($0.packet) }, sequences)
    }

    func testNonTCPPacketsPassAtOnceAndControlSegmentsAfterWhatIsHeldForTheirFlow() {
        let pieces = segments(TCPPacket.payload(3 * 1208), flags: 0x10)
        add(pieces[0])
        add(pieces[1])
        let udp = TCPPacket.udp(payload: [1, 2, 3])
        add(udp)
        XCTAssertEqual(written, [Output(packet: udp, segmentSize: nil)], "UDP is written at once, TCP still held")
        flush()
        let next: UInt32 = 1000 + 2 * 1208
        for (flags, name) in [(UInt8(0x11), "FIN"), (0x12, "SYN"), (0x14, "RST"), (0x30, "URG"), (0x90, "CWR")] {
            written = []
            add(pieces[0])
            add(pieces[1])
            let control = TCPPacket.make(payload: TCPPacket.payload(1208), sequence: next, flags: flags)
            add(control)
            let expected: [Int] = [52 + 2 * 1208, control.count]
            XCTAssertEqual(written.map(\.packet.count), expected, "\(name): what was held, then it")
            XCTAssertEqual(written.last, Output(packet: control, segmentSize: nil), "\(name) is never merged")
            XCTAssertFalse(coalescer.isHolding)
        }
        written = []
        add(pieces[0])
        let pureAck = TCPPacket.make(payload: [], sequence: 1000 + 1208, flags: 0x10)
        add(pureAck)
        XCTAssertEqual(written.map(\.packet), [pieces[0], pureAck], "a pure ACK: the flow's held segment first")
    }

    func testOutOfOrderAndRepeatedSegmentsAreNotMergedAndKeepTheirOrder() {
        let pieces = segments(TCPPacket.payload(5 * 1208), flags: 0x10)
        // Arrival: 0 1 3 2 2 4 (3 overtook 2, 2 came twice): the host's TCP sees them as they came.
        for index in [0, 1, 3, 2, 2, 4] { add(pieces[index]) }
        flush()
        let order: [UInt32] = [0, 3, 2, 2, 4].map { (index: Int) -> UInt32 in 1000 + UInt32(index * 1208) }
        XCTAssertEqual(written.map { TCPPacket.sequence($0.packet) }, order, "0+1 merged, then each as it came")
        let expected = [TCPPacket.payloadOf(pieces[0]) + TCPPacket.payloadOf(pieces[1])]
            + [3, 2, 2, 4].map { TCPPacket.payloadOf(pieces[$0]) }
        XCTAssertEqual(written.map { TCPPacket.payloadOf($0.packet) }, expected, "no byte changed")
        XCTAssertEqual(written.map(\.segmentSize), [1208, nil, nil, nil, nil])
    }

    func testFlowsAreHeldApartAndANewFlowBeyondTheLimitWritesOutTheOldest() {
        coalescer = TCPCoalescer(flowLimit: 2)
        let a = segments(TCPPacket.payload(2 * 1208), flags: 0x10, sourcePort: 1)
        let b = segments(TCPPacket.payload(2 * 1208), flags: 0x10, sourcePort: 2)
        let c = segments(TCPPacket.payload(2 * 1208), flags: 0x10, sourcePort: 3)
        add(a[0]); add(b[0]); add(a[1]); add(b[1])
        XCTAssertTrue(written.isEmpty, "two flows, interleaved, both held")
        add(c[0])
        XCTAssertEqual(written.count, 1, "a third flow writes out the oldest")
        XCTAssertEqual(Array(written[0].packet[20..<22]), [0, 1], "flow a")
        add(c[1])
        flush()
        XCTAssertEqual(written.map { $0.packet[21] }, [1, 2, 3], "a, then b and c at the flush, oldest first")
        XCTAssertEqual(written.map(\.segmentSize), [1208, 1208, 1208])
        XCTAssertEqual(written.map { TCPPacket.payloadOf($0.packet) }, [a, b, c].map { $0.flatMap(TCPPacket.payloadOf) })
    }

    func testSegmentsThatDifferInAckOptionsTOSOrAddressesAreNotMerged() {
        let payload = TCPPacket.payload(1208)
        let first = TCPPacket.make(payload: payload, sequence: 1000)
        let next: UInt32 = 1000 + 1208
        let variants: [(String, [UInt8])] = [
            ("acknowledgement", TCPPacket.make(payload: payload, sequence: next, ack: 2)),
            ("timestamp option", TCPPacket.make(payload: payload, sequence: next, timestamp: 8)),
            ("TOS (ECN CE)", TCPPacket.make(payload: payload, sequence: next, tos: 3)),
            ("ECE flag", TCPPacket.make(payload: payload, sequence: next, flags: 0x50)),
            ("destination", TCPPacket.make(payload: payload, sequence: next, destination: 0x6440_0003)),
            ("larger than the first", TCPPacket.make(payload: payload + [1], sequence: next)),
        ]
        for (what, variant) in variants {
            written = []
            add(first)
            add(variant)
            flush()
            XCTAssertEqual(written, [Output(packet: first, segmentSize: nil), Output(packet: variant, segmentSize: nil)],
                           "\(what) differs: not merged")
        }
        written = []
        add(first)
        add(TCPPacket.make(payload: payload, sequence: next, id: 99, window: 512))
        flush()
        XCTAssertEqual(written.count, 1, "identification and window may differ")
        XCTAssertEqual(TCPPacket.window(written[0].packet), 512, "the latest window holds")
    }

    func testASuperSegmentStaysWithin64KBAnd64Segments() {
        // 50 consecutive 1,400-byte segments (70,000 bytes: more than one IP packet holds), MTU 1,500.
        coalescer = TCPCoalescer(mtu: 1500)
        let large = (0..<50).map { (index: Int) -> [UInt8] in
            TCPPacket.make(payload: TCPPacket.payload(1400, seed: index), sequence: 1000 + UInt32(index * 1400))
        }
        for piece in large { add(piece) }
        flush()
        let sizes: [Int] = [52 + 46 * 1400, 52 + 4 * 1400]
        XCTAssertEqual(written.map(\.packet.count), sizes, "at most 65,535 bytes")
        XCTAssertTrue(written.allSatisfy { TCPPacket.totalLength($0.packet) == $0.packet.count })
        written = []
        let small = segments(TCPPacket.payload(100 * 536), size: 536, flags: 0x10)
        for piece in small { add(piece) }
        flush()
        let counts: [Int] = [64 * 536, 36 * 536]
        XCTAssertEqual(written.map { TCPPacket.payloadOf($0.packet).count }, counts, "at most 64 segments")
    }

    func testPacketsAboveTheMTUAreWrittenAsTheyAreAfterTheirFlow() {
        let segment = TCPPacket.make(payload: TCPPacket.payload(1208), sequence: 1000)
        let piece = TCPPacket.make(payload: TCPPacket.payload(4 * 1208), sequence: 1000 + 1208)
        add(segment)
        add(piece)
        XCTAssertEqual(written, [Output(packet: segment, segmentSize: nil), Output(packet: piece, segmentSize: nil)],
                       "a piece of several segments is already a super-segment: the device cuts it at its MTU")
        XCTAssertFalse(coalescer.isHolding)
    }

    func testIPOptionsAreNotMerged() {
        var withOptions = TCPPacket.make(payload: TCPPacket.payload(100))
        // An IP header of 24 bytes: a NOP option word inserted, lengths fixed.
        withOptions.insert(contentsOf: [1, 1, 1, 0], at: 20)
        withOptions[0] = 0x46
        withOptions[3] &+= 4
        add(withOptions)
        XCTAssertEqual(written, [Output(packet: withOptions, segmentSize: nil)])
        XCTAssertFalse(coalescer.isHolding)
    }
}
