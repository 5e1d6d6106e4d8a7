import NIOCore
@testable import Transports
import WOWKit
import XCTest

/// Forward error correction without sockets: the encoder's datagrams, the decoder putting back what a path
/// lost (in any order, with duplicates), and the policy's group sizes.
final class FECTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    /// A body whose bytes depend on `seed`, `size` long.
    private func body(_ size: Int, seed: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 1) })
    }

    /// The datagrams the encoder makes for `bodies` with group size `groupSize`: data datagrams, each full
    /// group followed by its parity, the last open group closed at the end (as the listener's flush does).
    private func encode(_ bodies: [ByteBuffer], groupSize: Int, encoder: inout FECEncoder) -> [ByteBuffer] {
        encoder.groupSize = groupSize
        var datagrams: [ByteBuffer] = []
        for body in bodies {
            var buffer = allocator.buffer(capacity: 1_500)
            encoder.writeData(into: &buffer) { $0.writeImmutableBuffer(body) }
            XCTAssertEqual(buffer.readableBytes, FECPacket.dataHeaderSize + body.readableBytes)
            datagrams.append(buffer)
            if encoder.isGroupFull { datagrams.append(parity(&encoder)) }
        }
        if encoder.hasOpenGroup { datagrams.append(parity(&encoder)) }
        return datagrams
    }

    private func parity(_ encoder: inout FECEncoder) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 1_500)
        let size = encoder.paritySize
        encoder.writeParity(into: &buffer)
        XCTAssertEqual(buffer.readableBytes, size)
        XCTAssertFalse(encoder.hasOpenGroup)
        return buffer
    }

    /// What the decoder hands up for `datagrams`: every data body as it comes, and every recovered one.
    private func decode(_ datagrams: [ByteBuffer], decoder: inout FECDecoder) -> (bodies: [ByteBuffer], recovered: Int) {
        var bodies: [ByteBuffer] = []
        var recovered = 0
        for datagram in datagrams {
            switch FECPacket.kind(of: datagram) {
            case FECPacket.dataKind:
                let header = try! XCTUnwrap(FECPacket.DataHeader(of: datagram))
                var inner = datagram
                inner.moveReaderIndex(forwardBy: FECPacket.dataHeaderSize)
                let back = decoder.receiveData(header, body: inner, allocator: allocator)
                bodies.append(inner)
                if let back { bodies.append(back); recovered += 1 }
            case FECPacket.parityKind:
                let header = try! XCTUnwrap(FECPacket.ParityHeader(of: datagram))
                var units = datagram
                units.moveReaderIndex(forwardBy: FECPacket.parityHeaderSize)
                if let back = decoder.receiveParity(header, units: units, allocator: allocator) {
                    bodies.append(back)
                    recovered += 1
                }
            default:
                XCTFail("not a data or parity datagram")
            }
        }
        return (bodies, recovered)
    }

    func testEveryDatagramIsNumberedAndAGroupsParityIsAsLongAsItsLongestDatagram() throws {
        var encoder = FECEncoder()
        let bodies = [body(1_300, seed: 1), body(1_300, seed: 2), body(700, seed: 3), body(1_300, seed: 4)]
        let datagrams = encode(bodies, groupSize: 4, encoder: &encoder)
        XCTAssertEqual(datagrams.count, 5)
        let headers = try datagrams.prefix(4).map { try XCTUnwrap(FECPacket.DataHeader(of: $0)) }
        XCTAssertEqual(headers.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(headers.map(\.groupSize), [4, 4, 4, 4])
        XCTAssertEqual(headers.map { $0.sequence &- headers[0].sequence }, [0, 1, 2, 3])
        let parity = try XCTUnwrap(FECPacket.ParityHeader(of: datagrams[4]))
        XCTAssertEqual(parity.groupStart, headers[0].sequence)
        XCTAssertEqual(parity.count, 4)
        XCTAssertEqual(datagrams[4].readableBytes, datagrams[0].readableBytes, "one size: both fit one GSO write")
    }

    func testWithoutAGroupSizeOnlyTheHeadersGo() {
        var encoder = FECEncoder()
        let datagrams = encode((0..<5).map { body(100, seed: $0) }, groupSize: 0, encoder: &encoder)
        XCTAssertEqual(datagrams.count, 5, "no parity")
        XCTAssertTrue(datagrams.allSatisfy { FECPacket.DataHeader(of: $0)?.groupSize == 0 })
        var decoder = FECDecoder()
        XCTAssertEqual(decode(datagrams, decoder: &decoder).bodies.count, 5)
        XCTAssertEqual(decoder.received, 5, "counted for the loss reports")
    }

    func testAnyOneLostDatagramOfAGroupIsPutBackWhateverTheOrder() throws {
        let bodies = (0..<8).map { body([1_300, 900, 1_443, 1][$0 % 4], seed: $0) }
        for lost in 0..<8 {
            var encoder = FECEncoder()
            var datagrams = encode(bodies, groupSize: 8, encoder: &encoder)
            XCTAssertEqual(datagrams.count, 9)
            datagrams.remove(at: lost)
            // The parity first, then the rest backwards, with a duplicate.
            let shuffled = [datagrams[7]] + datagrams[0..<7].reversed() + [datagrams[0]]
            var decoder = FECDecoder()
            let (received, recovered) = decode(shuffled, decoder: &decoder)
            XCTAssertEqual(recovered, 1, "lost \(lost)")
            XCTAssertEqual(Set(received.map { Array($0.readableBytesView) }), Set(bodies.map { Array($0.readableBytesView) }),
                           "every body, the lost one (\(lost)) put back byte for byte")
        }
    }

    func testTwoLostInOneGroupOrALostParityPutNothingBack() {
        let bodies = (0..<4).map { body(500, seed: $0) }
        var encoder = FECEncoder()
        let datagrams = encode(bodies, groupSize: 4, encoder: &encoder)
        var decoder = FECDecoder()
        XCTAssertEqual(decode([datagrams[0], datagrams[2], datagrams[4]], decoder: &decoder).recovered, 0)
        var other = FECDecoder()
        XCTAssertEqual(decode(Array(datagrams[0..<3]), decoder: &other).recovered, 0, "the parity was the one lost")
    }

    func testGroupsClosedEarlyAndManyGroupsInFlight() throws {
        var encoder = FECEncoder()
        var datagrams: [ByteBuffer] = []
        var expected: [[UInt8]] = []
        // Groups of 3 closed after 2 (a flush), 12 of them, each losing its first datagram.
        for round in 0..<12 {
            let pair = [body(200, seed: round * 2), body(300, seed: round * 2 + 1)]
            expected += pair.map { Array($0.readableBytesView) }
            let group = encode(pair, groupSize: 3, encoder: &encoder)
            XCTAssertEqual(try XCTUnwrap(FECPacket.ParityHeader(of: group[2])).count, 2)
            datagrams += group.dropFirst()
        }
        var decoder = FECDecoder()
        let (received, recovered) = decode(datagrams, decoder: &decoder)
        XCTAssertEqual(recovered, 12)
        XCTAssertEqual(Set(received.map { Array($0.readableBytesView) }), Set(expected))
    }

    func testMalformedParityIsRefused() {
        var decoder = FECDecoder()
        let units = ByteBuffer(bytes: [0xFF, 0xFF, 1, 2, 3])
        XCTAssertNil(decoder.receiveParity(.init(groupStart: 1, count: 0), units: units, allocator: allocator))
        XCTAssertNil(decoder.receiveParity(.init(groupStart: 1, count: 33), units: units, allocator: allocator))
        XCTAssertNil(decoder.receiveParity(.init(groupStart: 1, count: 1), units: ByteBuffer(bytes: [1]),
                                           allocator: allocator))
        // A group of one whose parity claims a 65,535-byte body: nothing is made of it.
        XCTAssertNil(decoder.receiveParity(.init(groupStart: 5, count: 1), units: units, allocator: allocator))
        XCTAssertEqual(decoder.recovered, 0)
        XCTAssertNil(FECPacket.DataHeader(of: ByteBuffer(bytes: [1, 0x0A, 0, 0])))
        XCTAssertNil(FECPacket.LossReport(of: ByteBuffer(bytes: [1, 0x0C, 0, 0, 0, 0, 0, 0, 0])))
        XCTAssertNil(FECPacket.kind(of: ByteBuffer(bytes: [1, 0x09])))
        XCTAssertNil(FECPacket.kind(of: ByteBuffer(bytes: [2, 0x0A])))
        XCTAssertEqual(FECPacket.kind(of: ByteBuffer(bytes: [1, 0x0B])), 0x0B)
    }

    func testLossReportsAreDueByCountOrTime() {
        var decoder = FECDecoder()
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        for sequence in UInt32(10)..<13 {
            _ = decoder.receiveData(.init(sequence: sequence, index: 0, groupSize: 0), body: body(10, seed: 0),
                                    allocator: allocator)
        }
        XCTAssertNil(decoder.takeReport(now: start), "fewer than 4")
        _ = decoder.receiveData(.init(sequence: 20, index: 0, groupSize: 0), body: body(10, seed: 0), allocator: allocator)
        XCTAssertEqual(decoder.takeReport(now: start), FECPacket.LossReport(received: 4, highest: 20), "the first at once")
        for sequence in UInt32(21)..<(21 + 64) {
            _ = decoder.receiveData(.init(sequence: sequence, index: 0, groupSize: 0), body: body(10, seed: 0),
                                    allocator: allocator)
        }
        XCTAssertNil(decoder.takeReport(now: start + .milliseconds(50)), "not within 100 ms")
        XCTAssertEqual(decoder.takeReport(now: start + .milliseconds(100))?.received, 68)
    }

    func testThePolicyFollowsTheReportedLoss() {
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0, current: 0), 0)
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.0003, current: 0), 0, "not on below 0.05%")
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.0003, current: 32), 32, "not off above 0.02%")
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.001, current: 0), 32)
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.01, current: 0), 8)
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.03, current: 0), 4)
        XCTAssertEqual(FECPolicy.groupSize(forLoss: 0.2, current: 0), 2)

        var policy = FECPolicy()
        var received: UInt32 = 0
        var highest: UInt32 = 4_000_000_000  // wraps on the way
        XCTAssertEqual(policy.take(.init(received: received, highest: highest)), 0, "one report says nothing")
        for _ in 0..<20 {
            highest &+= 1_000
            received &+= 990  // 1% lost
            _ = policy.take(.init(received: received, highest: highest))
        }
        XCTAssertEqual(policy.lossRate, 0.01, accuracy: 0.0001)
        XCTAssertEqual(policy.groupSize, 8)
        for _ in 0..<200 {
            highest &+= 1_000
            received &+= 1_000
            _ = policy.take(.init(received: received, highest: highest))
        }
        XCTAssertEqual(policy.groupSize, 0, "a path that got clean")
        XCTAssertEqual(policy.take(.init(received: received, highest: highest &- 5)), 0, "backwards: counted again")
        XCTAssertEqual(policy.expected, 0)
    }

    func testTheSettingParses() {
        XCTAssertEqual(UDPTransport.FECSetting("auto"), .auto)
        XCTAssertEqual(UDPTransport.FECSetting("off"), .off)
        XCTAssertEqual(UDPTransport.FECSetting("8"), .fixed(8))
        XCTAssertNil(UDPTransport.FECSetting("1"))
        XCTAssertNil(UDPTransport.FECSetting("64"))
        XCTAssertNil(UDPTransport.FECSetting("on"))
    }
}
