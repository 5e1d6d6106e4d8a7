import NIOCore
@testable import Transports
import WOWKit
import XCTest

/// The fragmenter and the reassembler without sockets, on made-up time.
final class UDPFragmentReassemblerTests: XCTestCase {
    private let allocator = ByteBufferAllocator()
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func remote(_ port: Int = 4000) throws -> SocketAddress {
        try SocketAddress(ipAddress: "127.0.0.1", port: port)
    }

    /// A packet whose bytes depend on their position and `seed`, so misplaced pieces show.
    private func packet(size: Int, seed: Int = 0) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: size + 8)
        for i in stride(from: 0, to: size, by: 8) { buffer.writeInteger(UInt64(i) &* 0x9E37_79B9 &+ UInt64(seed)) }
        buffer.moveWriterIndex(to: size)
        return buffer
    }

    /// The datagrams of `packet` as the listener sends them (the fragmenter's buffer cut at 1,452 bytes).
    private func datagrams(of packet: ByteBuffer, id: UInt32) -> [ByteBuffer] {
        var all = UDPFragmenter.fragments(of: packet, messageID: id, allocator: allocator)
        var result: [ByteBuffer] = []
        while all.readableBytes > 0 {
            result.append(all.readSlice(length: min(UDPTransport.maximumDatagramSize, all.readableBytes))!)
        }
        return result
    }

    /// A fragment datagram made by hand.
    private func fragment(id: UInt32, index: Int, count: Int, length: Int, fill: UInt8 = 7) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: FragmentPacket.headerSize + length)
        buffer.writeInteger(WireFormat.version)
        buffer.writeInteger(FragmentPacket.kind)
        buffer.writeInteger(id, endianness: .big)
        buffer.writeInteger(UInt8(truncatingIfNeeded: index))
        buffer.writeInteger(UInt8(truncatingIfNeeded: count))
        buffer.writeRepeatingByte(fill, count: length)
        return buffer
    }

    // MARK: Splitting

    func testTheLimitsFollowFromTheDatagramSize() {
        XCTAssertEqual(UDPTransport.maximumDatagramSize, 1_500 - 40 - 8)
        XCTAssertEqual(UDPFragmenter.maximumPieceSize, 1_444)
        XCTAssertEqual(UDPFragmenter.pieceSize, 1_452 - FECPacket.dataHeaderSize - FragmentPacket.headerSize)
        XCTAssertEqual(UDPFragmenter.maximumFragmentCount, 46)
        XCTAssertEqual(UDPFragmenter.maximumSegmentsPerWrite, 45)
        XCTAssertEqual(UDPTransport.maximumPacketSize, WireFormat.maximumPacketSize)
    }

    func testOnlyPacketsOverOneDatagramOrStartingLikeAFragmentAreSplit() {
        XCTAssertFalse(UDPFragmenter.needsFragments(packet(size: 0)))
        XCTAssertFalse(UDPFragmenter.needsFragments(packet(size: 1_443)), "one datagram's body, with the data header")
        XCTAssertTrue(UDPFragmenter.needsFragments(packet(size: 1_444)))
        XCTAssertTrue(UDPFragmenter.needsFragments(ByteBuffer(bytes: [1, 0x09, 0, 0])))
        XCTAssertFalse(UDPFragmenter.needsFragments(ByteBuffer(bytes: [1, 0x10, 0, 0])))
    }

    func testFragmentsHaveTheHeaderAndAreFullDatagramsButTheLast() throws {
        let whole = packet(size: 3_000)
        let parts = datagrams(of: whole, id: 0xA1B2_C3D4)
        XCTAssertEqual(parts.map(\.readableBytes), [1_452, 1_452, 3_000 - 2 * 1_444 + 8])
        for (index, part) in parts.enumerated() {
            XCTAssertEqual(part.getBytes(at: part.readerIndex, length: 8),
                           [1, 0x09, 0xA1, 0xB2, 0xC3, 0xD4, UInt8(index), 3])
        }
    }

    // MARK: Round trips

    func testEverySizeFrom1453To65535SplitsIntoSmallDatagramsAndComesBackIntact() throws {
        var reassembler = UDPFragmentReassembler()
        var sizes = Array(stride(from: 1_453, through: 65_535, by: 499))
        sizes += [1_444 * 2, 1_444 * 2 + 1, 1_444 * 45, 1_444 * 45 + 1, 65_534, 65_535]
        for (number, size) in sizes.enumerated() {
            let whole = packet(size: size, seed: number)
            let parts = datagrams(of: whole, id: UInt32(number))
            XCTAssertEqual(parts.count, (size + 1_443) / 1_444)
            XCTAssertTrue(parts.allSatisfy { $0.readableBytes <= UDPTransport.maximumDatagramSize })
            for (index, part) in parts.enumerated() {
                let outcome = reassembler.receive(part, from: try remote(), now: start, allocator: allocator)
                if index < parts.count - 1 {
                    XCTAssertEqual(outcome, .pending, "size \(size) fragment \(index)")
                } else {
                    XCTAssertEqual(outcome, .complete(whole), "size \(size)")
                }
            }
        }
        XCTAssertEqual(reassembler.messageCount, 0)
        XCTAssertEqual(reassembler.bufferedBytes, 0)
    }

    func testFragmentsInAnyOrderAndInterleavedMessagesReassemble() throws {
        var reassembler = UDPFragmentReassembler()
        var random = SeededRandom(seed: 7)
        let wholes = [packet(size: 60_000, seed: 1), packet(size: 5_000, seed: 2), packet(size: 65_535, seed: 3)]
        var parts: [(message: Int, datagram: ByteBuffer)] = []
        for (message, whole) in wholes.enumerated() {
            parts += datagrams(of: whole, id: UInt32(100 + message)).map { (message, $0) }
        }
        parts.shuffle(using: &random)
        var completed: [Int: ByteBuffer] = [:]
        for (message, datagram) in parts {
            if case .complete(let packet) = reassembler.receive(datagram, from: try remote(), now: start,
                                                                allocator: allocator) {
                XCTAssertNil(completed[message])
                completed[message] = packet
            }
        }
        XCTAssertEqual(completed, [0: wholes[0], 1: wholes[1], 2: wholes[2]])
        XCTAssertEqual(reassembler.messageCount, 0)
    }

    /// Another sender may cut smaller pieces: they are moved together at the end.
    func testPiecesShorterThanTheMaximumReassembleInAnyOrder() throws {
        var reassembler = UDPFragmentReassembler()
        var whole = allocator.buffer(capacity: 2_500)
        for (index, fill) in [UInt8(1), 2, 3].enumerated() {
            whole.writeRepeatingByte(fill, count: index == 2 ? 500 : 1_000)
        }
        let parts = [fragment(id: 9, index: 2, count: 3, length: 500, fill: 3),
                     fragment(id: 9, index: 0, count: 3, length: 1_000, fill: 1),
                     fragment(id: 9, index: 1, count: 3, length: 1_000, fill: 2)]
        let outcomes = try parts.map { reassembler.receive($0, from: try remote(), now: start, allocator: allocator) }
        XCTAssertEqual(outcomes, [.pending, .pending, .complete(whole)])
    }

    /// A packet that starts like a fragment goes as one fragment of count 1 and comes back as it was.
    func testAPacketStartingLikeAFragmentRoundTripsAsOneFragment() throws {
        var reassembler = UDPFragmentReassembler()
        let whole = ByteBuffer(bytes: [1, 0x09, 0xFF, 0, 0, 0, 0, 0, 0, 42])
        let parts = datagrams(of: whole, id: 3)
        XCTAssertEqual(parts.count, 1)
        XCTAssertEqual(reassembler.receive(parts[0], from: try remote(), now: start, allocator: allocator),
                       .complete(whole))
        XCTAssertEqual(reassembler.messageCount, 0)
    }

    func testTheSameMessageIDFromTwoRemotesMakesTwoMessages() throws {
        var reassembler = UDPFragmentReassembler()
        let a = packet(size: 3_000, seed: 1), b = packet(size: 3_000, seed: 2)
        let partsA = datagrams(of: a, id: 5), partsB = datagrams(of: b, id: 5)
        for index in 0..<2 {
            XCTAssertEqual(reassembler.receive(partsA[index], from: try remote(1), now: start, allocator: allocator), .pending)
            XCTAssertEqual(reassembler.receive(partsB[index], from: try remote(2), now: start, allocator: allocator), .pending)
        }
        XCTAssertEqual(reassembler.receive(partsB[2], from: try remote(2), now: start, allocator: allocator), .complete(b))
        XCTAssertEqual(reassembler.receive(partsA[2], from: try remote(1), now: start, allocator: allocator), .complete(a))
    }

    // MARK: Duplicates and loss

    func testADuplicateFragmentIsDroppedAndTheMessageStillCompletes() throws {
        var reassembler = UDPFragmentReassembler()
        let whole = packet(size: 4_000)
        let parts = datagrams(of: whole, id: 1)
        XCTAssertEqual(reassembler.receive(parts[1], from: try remote(), now: start, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(parts[1], from: try remote(), now: start, allocator: allocator),
                       .dropped(.fragmentDuplicate))
        XCTAssertEqual(reassembler.receive(parts[0], from: try remote(), now: start, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(parts[2], from: try remote(), now: start, allocator: allocator),
                       .complete(whole))
        XCTAssertEqual(reassembler.drops.count(of: .fragmentDuplicate), 1)
    }

    func testAMessageMissingAFragmentTimesOutAndFreesItsBytes() throws {
        var reassembler = UDPFragmentReassembler()
        let parts = datagrams(of: packet(size: 10_000), id: 1)
        for part in parts.dropLast() {
            XCTAssertEqual(reassembler.receive(part, from: try remote(), now: start, allocator: allocator), .pending)
        }
        XCTAssertEqual(reassembler.messageCount, 1)
        XCTAssertEqual(reassembler.bufferedBytes, parts.count * 1_444)
        reassembler.expire(now: start + .milliseconds(999))
        XCTAssertEqual(reassembler.messageCount, 1, "not yet")
        reassembler.expire(now: start + .seconds(1))
        XCTAssertEqual(reassembler.messageCount, 0)
        XCTAssertEqual(reassembler.bufferedBytes, 0)
        XCTAssertEqual(reassembler.drops.count(of: .fragmentTimeout), 1)
        // The late fragment starts a new message, which times out too: the packet is lost.
        XCTAssertEqual(reassembler.receive(parts.last!, from: try remote(), now: start + .seconds(2),
                                           allocator: allocator), .pending)
        reassembler.expire(now: start + .seconds(3))
        XCTAssertEqual(reassembler.drops.count(of: .fragmentTimeout), 2)
    }

    /// Expired messages of a remote go when its next fragment arrives, without a sweep.
    func testAnExpiredMessageGoesWhenItsRemoteSendsAgain() throws {
        var reassembler = UDPFragmentReassembler()
        let old = datagrams(of: packet(size: 3_000), id: 1)
        let new = packet(size: 3_000, seed: 9)
        let newParts = datagrams(of: new, id: 2)
        _ = reassembler.receive(old[0], from: try remote(), now: start, allocator: allocator)
        for (index, part) in newParts.enumerated() {
            let outcome = reassembler.receive(part, from: try remote(), now: start + .milliseconds(1_100),
                                              allocator: allocator)
            XCTAssertEqual(outcome, index == 2 ? .complete(new) : .pending)
        }
        XCTAssertEqual(reassembler.drops.count(of: .fragmentTimeout), 1)
        XCTAssertEqual(reassembler.messageCount, 0)
    }

    /// A sweep takes the expired messages of every remote and keeps the others' in progress, which complete.
    func testASweepExpiresEveryRemotesOldMessagesAndKeepsTheRest() throws {
        var reassembler = UDPFragmentReassembler()
        let kept = packet(size: 5_000, seed: 3)
        let keptParts = datagrams(of: kept, id: 7)
        for port in 4001...4003 {
            _ = reassembler.receive(datagrams(of: packet(size: 3_000), id: 1)[0], from: try remote(port), now: start,
                                    allocator: allocator)
        }
        _ = reassembler.receive(keptParts[0], from: try remote(4002), now: start + .milliseconds(600),
                                allocator: allocator)
        XCTAssertEqual(reassembler.messageCount, 4)
        reassembler.expire(now: start + .seconds(1))
        XCTAssertEqual(reassembler.messageCount, 1)
        XCTAssertEqual(reassembler.drops.count(of: .fragmentTimeout), 3)
        XCTAssertEqual(reassembler.bufferedBytes, keptParts.count * 1_444)
        for (index, part) in keptParts.enumerated().dropFirst() {
            let outcome = reassembler.receive(part, from: try remote(4002), now: start + .milliseconds(1_100),
                                              allocator: allocator)
            XCTAssertEqual(outcome, index == keptParts.count - 1 ? .complete(kept) : .pending)
        }
        XCTAssertEqual(reassembler.messageCount, 0)
        XCTAssertEqual(reassembler.bufferedBytes, 0)
        // A remote whose list emptied starts anew.
        let again = packet(size: 2_000, seed: 5)
        let outcomes = try datagrams(of: again, id: 2).map {
            reassembler.receive($0, from: try remote(4001), now: start + .seconds(2), allocator: allocator)
        }
        XCTAssertEqual(outcomes, [.pending, .complete(again)])
    }

    // MARK: Malformed fragments

    func testMalformedFragmentsAreDroppedWithTheirReasonAndLeaveMessagesAlone() throws {
        var reassembler = UDPFragmentReassembler()
        let whole = packet(size: 3_000)
        let parts = datagrams(of: whole, id: 1)
        XCTAssertEqual(reassembler.receive(parts[0], from: try remote(), now: start, allocator: allocator), .pending)

        var cases: [(ByteBuffer, UDPEdgeListener.DropReason)] = []
        for length in 2..<8 {
            cases.append((fragment(id: 1, index: 1, count: 3, length: 0).getSlice(at: 0, length: length)!,
                          .fragmentTruncated))
        }
        cases += [
            (fragment(id: 1, index: 1, count: 3, length: 0), .fragmentEmpty),
            (fragment(id: 1, index: 1, count: 3, length: 1_445), .fragmentOversized),
            (fragment(id: 1, index: 0, count: 0, length: 10), .fragmentBadCount),
            (fragment(id: 1, index: 0, count: 47, length: 10), .fragmentBadCount),
            (fragment(id: 1, index: 255, count: 255, length: 10), .fragmentBadCount),
            (fragment(id: 1, index: 1, count: 4, length: 1_444), .fragmentBadCount),
            (fragment(id: 1, index: 3, count: 3, length: 10), .fragmentBadIndex),
            (fragment(id: 2, index: 46, count: 46, length: 10), .fragmentBadIndex),
            (fragment(id: 1, index: 1, count: 3, length: 1_000), .fragmentBadLength),
            (fragment(id: 1, index: 2, count: 3, length: 1_444 + 1), .fragmentOversized),
            (fragment(id: 1, index: 0, count: 3, length: 1_444), .fragmentDuplicate),
        ]
        for (datagram, reason) in cases {
            XCTAssertEqual(reassembler.receive(datagram, from: try remote(), now: start, allocator: allocator),
                           .dropped(reason), "\(reason)")
        }
        for reason in Set(cases.map(\.1)) {
            XCTAssertEqual(reassembler.drops.count(of: reason), cases.filter { $0.1 == reason }.count, "\(reason)")
        }
        XCTAssertEqual(reassembler.messageCount, 1, "no malformed fragment started a message")
        // The message in progress is untouched by all of them.
        XCTAssertEqual(reassembler.receive(parts[1], from: try remote(), now: start, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(parts[2], from: try remote(), now: start, allocator: allocator),
                       .complete(whole))
    }

    func testPieceLengthsThatDisagreeOrPassTheLargestPacketAreDropped() throws {
        var reassembler = UDPFragmentReassembler()
        let now = start
        // The last piece longer than the others.
        XCTAssertEqual(reassembler.receive(fragment(id: 1, index: 0, count: 2, length: 500), from: try remote(),
                                           now: now, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(fragment(id: 1, index: 1, count: 2, length: 501), from: try remote(),
                                           now: now, allocator: allocator), .dropped(.fragmentBadLength))
        // The last first, then a shorter piece before it.
        XCTAssertEqual(reassembler.receive(fragment(id: 2, index: 1, count: 2, length: 600), from: try remote(),
                                           now: now, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(fragment(id: 2, index: 0, count: 2, length: 599), from: try remote(),
                                           now: now, allocator: allocator), .dropped(.fragmentBadLength))
        // 46 full pieces make 66,424 bytes: over 65,535, whichever arrives last.
        XCTAssertEqual(reassembler.receive(fragment(id: 3, index: 0, count: 46, length: 1_444), from: try remote(),
                                           now: now, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(fragment(id: 3, index: 45, count: 46, length: 1_444), from: try remote(),
                                           now: now, allocator: allocator), .dropped(.fragmentBadLength))
        XCTAssertEqual(reassembler.receive(fragment(id: 4, index: 45, count: 46, length: 1_444), from: try remote(),
                                           now: now, allocator: allocator), .pending)
        XCTAssertEqual(reassembler.receive(fragment(id: 4, index: 0, count: 46, length: 1_444), from: try remote(),
                                           now: now, allocator: allocator), .dropped(.fragmentBadLength))
        XCTAssertEqual(reassembler.drops.count(of: .fragmentBadLength), 4)
    }

    // MARK: Memory bounds

    func testAFloodOfFirstFragmentsFromOneRemoteKeepsAtMostTheLimit() throws {
        var reassembler = UDPFragmentReassembler()
        for id in 0..<1_000 {
            let outcome = reassembler.receive(fragment(id: UInt32(id), index: 0, count: 46, length: 1_400),
                                              from: try remote(), now: start + .microseconds(Int64(id)),
                                              allocator: allocator)
            XCTAssertEqual(outcome, .pending)
            XCTAssertLessThanOrEqual(reassembler.messageCount, 4)
        }
        XCTAssertEqual(reassembler.messageCount, 4)
        XCTAssertEqual(reassembler.bufferedBytes, 4 * 46 * 1_444)
        XCTAssertEqual(reassembler.drops.count(of: .fragmentEvicted), 996)
        // The newest survive: the last message can still complete.
        let last = reassembler.receive(fragment(id: 999, index: 1, count: 46, length: 1_400), from: try remote(),
                                       now: start + .milliseconds(2), allocator: allocator)
        XCTAssertEqual(last, .pending)
    }

    func testAFloodFromManyRemotesStaysWithinTheByteBudget() throws {
        let limits = UDPFragmentReassembler.Limits(messagesPerRemote: 4, bufferedBytes: 1 << 20, timeout: .seconds(1))
        var reassembler = UDPFragmentReassembler(limits: limits)
        for port in 1..<2_000 {
            _ = reassembler.receive(fragment(id: 1, index: 0, count: 46, length: 1_444), from: try remote(port),
                                    now: start, allocator: allocator)
            XCTAssertLessThanOrEqual(reassembler.bufferedBytes, 1 << 20)
        }
        let fitting = (1 << 20) / (46 * 1_444)
        XCTAssertEqual(reassembler.messageCount, fitting)
        XCTAssertEqual(reassembler.drops.count(of: .fragmentNoRoom), 1_999 - fitting)
        // Once they time out, there is room again.
        XCTAssertEqual(reassembler.receive(fragment(id: 1, index: 0, count: 46, length: 1_444), from: try remote(1),
                                           now: start + .seconds(1), allocator: allocator), .pending)
        XCTAssertEqual(reassembler.messageCount, 1)
        XCTAssertEqual(reassembler.drops.count(of: .fragmentTimeout), fitting)
    }
}
