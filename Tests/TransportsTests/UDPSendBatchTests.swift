import NIOCore
@testable import Transports
import XCTest

extension UDPSendBatch {
    /// Adds `datagram` as it is (see `add(size:to:segmentLimit:write:)`).
    mutating func add(_ datagram: ByteBuffer, to remote: SocketAddress,
                      segmentLimit: Int = UDPSendBatch.maximumSegments) -> Bool {
        add(size: datagram.readableBytes, to: remote, segmentLimit: segmentLimit) { $0.writeImmutableBuffer(datagram) }
    }
}

/// Gathering datagrams for one UDP GSO write, without a socket.
final class UDPSendBatchTests: XCTestCase {
    private let remote = try! SocketAddress(ipAddress: "127.0.0.1", port: 4000)
    private let other = try! SocketAddress(ipAddress: "127.0.0.1", port: 4001)

    private func datagram(_ size: Int, _ fill: UInt8) -> ByteBuffer { ByteBuffer(repeating: fill, count: size) }

    func testDatagramsOfOneSizeToOneRemoteBecomeOneWrite() throws {
        var batch = UDPSendBatch()
        for index in 0..<10 { XCTAssertTrue(batch.add(datagram(1_336, UInt8(index)), to: remote)) }
        XCTAssertTrue(batch.add(datagram(500, 0xEE), to: remote), "a shorter one ends it, as its last")
        XCTAssertFalse(batch.add(datagram(500, 0xEF), to: remote), "nothing after a shorter one")
        let write = try XCTUnwrap(batch.take())
        XCTAssertEqual(write.remote, remote)
        XCTAssertEqual(write.segmentSize, 1_336)
        XCTAssertEqual(Array(write.data.readableBytesView),
                       (0..<10).flatMap { Array(repeating: UInt8($0), count: 1_336) } + Array(repeating: 0xEE, count: 500),
                       "back to back, in order")
        XCTAssertTrue(batch.isEmpty)
        XCTAssertNil(batch.take())
    }

    func testALoneDatagramLeavesWithoutASegmentSize() throws {
        var batch = UDPSendBatch()
        XCTAssertTrue(batch.add(datagram(1_000, 1), to: remote))
        let write = try XCTUnwrap(batch.take())
        XCTAssertNil(write.segmentSize)
        XCTAssertEqual(Array(write.data.readableBytesView), Array(repeating: 1, count: 1_000))
    }

    func testWithoutGSOEachDatagramIsABatchOfItsOwn() throws {
        var batch = UDPSendBatch()
        XCTAssertTrue(batch.add(datagram(1_000, 1), to: remote, segmentLimit: 1))
        XCTAssertFalse(batch.add(datagram(1_000, 2), to: remote, segmentLimit: 1))
        XCTAssertEqual(batch.count, 1)
    }

    func testAnotherRemoteALargerDatagramOrAFullBatchIsRefused() throws {
        var batch = UDPSendBatch()
        XCTAssertTrue(batch.add(datagram(1_000, 1), to: remote))
        XCTAssertFalse(batch.add(datagram(1_000, 2), to: other), "another remote")
        XCTAssertFalse(batch.add(datagram(1_001, 2), to: remote), "larger than the first")
        XCTAssertEqual(batch.count, 1, "refused ones change nothing")
        _ = batch.take()
        for _ in 0..<UDPSendBatch.maximumSegments { XCTAssertTrue(batch.add(datagram(100, 1), to: remote)) }
        XCTAssertFalse(batch.add(datagram(100, 1), to: remote), "at most 64 datagrams")
        _ = batch.take()
        let perWrite = UDPSendBatch.maximumBytes / 1_400
        for _ in 0..<perWrite { XCTAssertTrue(batch.add(datagram(1_400, 1), to: remote)) }
        XCTAssertFalse(batch.add(datagram(1_400, 1), to: remote), "at most 65,507 bytes")
        XCTAssertEqual(try XCTUnwrap(batch.take()).data.readableBytes, perWrite * 1_400)
    }

    func testWritesStillHeldElsewhereStayIntactWhileTheRingIsReused() throws {
        var batch = UDPSendBatch()
        var writes: [ByteBuffer] = []
        // More batches than the ring has buffers, all kept (as a channel that has not written them yet).
        for round in 0..<(UDPSendBatch.ringSize * 2 + 3) {
            for _ in 0..<3 { XCTAssertTrue(batch.add(datagram(700, UInt8(round)), to: remote)) }
            writes.append(try XCTUnwrap(batch.take()).data)
        }
        for (round, write) in writes.enumerated() {
            XCTAssertEqual(Array(write.readableBytesView), Array(repeating: UInt8(round), count: 2_100), "batch \(round)")
        }
    }
}
