import NIOCore
import XCTest

@testable import WOWKit

/// How many segments go in one overlay packet, decided per flow from the host's own retransmissions.
final class SegmentationPolicyTests: XCTestCase {
    private var policy = SegmentationPolicy()

    /// The policy's answer for a TCP packet of `length` payload bytes from `sequence` on flow `port`.
    private func send(_ sequence: UInt32, _ length: Int, port: UInt16 = 1) -> Int {
        let packet = ByteBuffer(bytes: TCPPacket.make(payload: Array(repeating: 0, count: length), sequence: sequence,
                                                      sourcePort: port))
        return policy.segmentsPerPacket(for: TCPHeaders(packet)!)
    }

    /// Sends `megabytes` of 60,000-byte super-segments from `sequence` on, resending `share` of them (a
    /// super-segment's worth now and then, as TCP would after a loss); returns the last answer and the next
    /// sequence number.
    private func stream(_ megabytes: Int, from sequence: UInt32, resending share: Double, port: UInt16 = 1) -> (Int, UInt32) {
        var next = sequence
        var answer = 0
        var debt = 0.0
        for _ in 0..<(megabytes * 1_048_576 / 60_000 + 1) {
            answer = send(next, 60_000, port: port)
            next &+= 60_000
            debt += share * 60_000
            while debt >= 1_208 {
                answer = send(next &- 30_000, 1_208, port: port)  // one segment sent again
                debt -= 1_208
            }
        }
        return (answer, next)
    }

    func testACleanFlowSendsWholeSuperSegments() {
        XCTAssertEqual(send(1000, 60_000), SegmentationPolicy.whole)
        let (answer, _) = stream(20, from: 61_000, resending: 0)
        XCTAssertEqual(answer, SegmentationPolicy.whole)
        XCTAssertEqual(policy.retransmittedBytes, 0)
    }

    func testALossyFlowComesDownToOneSegmentPerPacketAndGoesBackUpWhenClean() {
        var (answer, next) = stream(12, from: 0xFFF0_0000, resending: 0.3)  // across the sequence wrap
        XCTAssertEqual(answer, 1, "30% of the bytes sent again: one segment per packet")
        XCTAssertGreaterThan(policy.retransmittedBytes, 0)
        (answer, next) = stream(3, from: next, resending: 0.05)
        XCTAssertEqual(answer, 1, "5% keeps it there")
        (answer, next) = stream(3, from: next, resending: 0)
        XCTAssertGreaterThanOrEqual(answer, 4, "one doubling per clean megabyte")
        (answer, _) = stream(10, from: next, resending: 0)
        XCTAssertEqual(answer, SegmentationPolicy.whole)
    }

    func testAShareBetweenTheThresholdsKeepsTheSize() {
        var (answer, next) = stream(4, from: 1, resending: 0.12)
        XCTAssertLessThan(answer, SegmentationPolicy.whole / 4, "halved at least once per megabyte")
        let settled = answer
        (answer, next) = stream(10, from: next, resending: 0.05)
        XCTAssertEqual(answer, settled, "5%: between 2% and 10%, no change")
    }

    func testANewConnectionToTheSamePeerInheritsWhatThePathIsLike() {
        _ = stream(6, from: 1, resending: 0.5, port: 1)
        XCTAssertEqual(send(1, 60_000, port: 2), 1, "the path is lossy whatever the connection")
        XCTAssertEqual(send(1, 60_000, port: 3) , 1)
        let other = ByteBuffer(bytes: TCPPacket.make(payload: Array(repeating: 0, count: 1000), destination: 0x6440_0009))
        XCTAssertEqual(policy.segmentsPerPacket(for: TCPHeaders(other)!), SegmentationPolicy.whole,
                       "another peer starts whole")
    }

    func testAFirstPacketOfAFlowIsNoRetransmission() {
        _ = stream(3, from: 1, resending: 0, port: 1)
        XCTAssertEqual(send(1, 60_000, port: 2), SegmentationPolicy.whole)
        XCTAssertEqual(send(1 &- 100_000, 60_000, port: 3), SegmentationPolicy.whole, "any starting sequence number")
        XCTAssertEqual(policy.retransmittedBytes, 0)
    }
}
