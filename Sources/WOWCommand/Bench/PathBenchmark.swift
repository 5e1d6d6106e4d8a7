import Foundation
import NIOCore
import WOWKit

/// The measurements behind `wow bench path`: the time the node's data path takes per packet on one thread,
/// sending (device -> virtual interface -> route -> encode -> seal -> edge) and receiving (edge -> open ->
/// decode -> route -> virtual network -> device), between two secured nodes in this process (`BenchNodePair`:
/// no sockets). Cases: single IP packets, and TCP super-segments of 50 segments of 1,208 bytes cut to a fixed
/// number of segments per overlay packet (whole, 8, 1). The baseline, in the same run: sealing and opening
/// the same bytes on an established secure channel alone, the part of the path no design can skip.
///
/// Each case alternates rounds of sending (A's frames captured) and receiving (those frames handed to B)
/// until `seconds` of both have passed; the first round only warms up.
struct PathBenchmark {
    var seconds: Double
    var size: Int
    /// Which cases run (`caseNames`); all when empty.
    var only: Set<String> = []

    static let caseNames = ["packets", "whole", "8", "1"]

    struct Case: Codable, Sendable {
        var name: String
        /// IP packets (or TCP segments) carried, and overlay packets they made, in the timed rounds.
        var segments: Int
        var overlay_packets: Int
        var payload_bytes: Int
        var send_ns_per_segment: Double
        var receive_ns_per_segment: Double
        /// Both sides, per KB of IP packet bytes.
        var ns_per_kb: Double
        /// `ns_per_kb` over the baseline's.
        var vs_seal_open: Double
    }

    struct Report: Codable, Sendable {
        var build: String
        var seal_open_ns_per_kb: Double
        var cases: [Case]
    }

    static let segmentsPerSuper = 50
    static let segmentSize = 1_208

    func run() throws -> Report {
        // Packet buffers stay on the heap, as in `wow run` (else page faults dominate the captured rounds).
        PacketMemory.tune()
        let baseline = try sealOpenNanosecondsPerKB()
        let pair = try BenchNodePair(size: size)
        var cases: [Case] = []
        if only.isEmpty || only.contains("packets") { cases.append(try packets(pair, baseline: baseline)) }
        pair.deviceB.takesSuperSegments = true
        for (name, perPacket) in [("whole", SegmentationPolicy.whole), ("8", 8), ("1", 1)] where only.isEmpty || only.contains(name) {
            cases.append(try superSegments(pair, segmentsPerPacket: perPacket, baseline: baseline))
        }
        let build = BenchBuild.name
        return Report(build: build, seal_open_ns_per_kb: baseline, cases: cases)
    }

    /// Rounds of `send` (returning the frames A sent) then `receive` (of those frames) until `seconds` of both
    /// have passed, the first round not timed. Returns the timed totals.
    private func rounds(send: () throws -> [ByteBuffer], receive: ([ByteBuffer]) throws -> Void)
        rethrows -> (send: Duration, receive: Duration, rounds: Int, frames: Int) {
        let clock = ContinuousClock()
        var sending = Duration.zero, receiving = Duration.zero
        var rounds = 0, frames = 0
        var warm = false
        while sending + receiving < .seconds(seconds) {
            let start = clock.now
            let sent = try send()
            let middle = clock.now
            try receive(sent)
            let end = clock.now
            if warm {
                sending += middle - start
                receiving += end - middle
                rounds += 1
                frames += sent.count
            }
            warm = true
        }
        return (sending, receiving, rounds, frames)
    }

    private func packets(_ pair: BenchNodePair, baseline: Double) throws -> Case {
        let perRound = 5_000
        let packet = BenchNodePair.ipPacket(from: pair.ipA, to: pair.ipB, size: size)
        let before = pair.deviceB.packets
        var firstRound = 0
        let timed = try rounds(send: {
            let frames = pair.capture(expected: perRound) {
                for _ in 0..<perRound { pair.interfaceA.receiveFromDevice(packet) }
            }
            guard frames.count == perRound else { throw BenchFailure("node A sent \(frames.count) frames for \(perRound) packets") }
            return frames
        }, receive: { frames in
            for frame in frames { pair.deliverToB(frame) }
            if firstRound == 0 { firstRound = pair.deviceB.packets - before }
        })
        let written = pair.deviceB.packets - before - firstRound
        guard written == timed.frames else { throw BenchFailure("node B wrote \(written) packets of \(timed.frames)") }
        return makeCase("\(size)-byte packets", timed, segments: timed.frames, bytes: timed.frames * size, baseline: baseline)
    }

    private func superSegments(_ pair: BenchNodePair, segmentsPerPacket: Int, baseline: Double) throws -> Case {
        let (count, size) = (PathBenchmark.segmentsPerSuper, PathBenchmark.segmentSize)
        let perRound = 100
        pair.interfaceA.segmentation = SegmentationPolicy(initialSegmentsPerPacket: segmentsPerPacket, adapts: false)
        var sequence: UInt32 = 1
        var superSegment = BenchNodePair.tcpSuperSegment(from: pair.ipA, to: pair.ipB, payload: count * size)
        let sequenceAt = superSegment.readerIndex + 24
        let piecesPerSuper = (count + segmentsPerPacket - 1) / segmentsPerPacket
        var writtenBytes = 0
        let timed = try rounds(send: {
            try pair.capture(expected: perRound * piecesPerSuper) {
                for _ in 0..<perRound {
                    // Each super-segment follows the last, as a stream's do (no retransmission).
                    superSegment.setInteger(sequence, at: sequenceAt)
                    sequence &+= UInt32(count * size)
                    pair.interfaceA.receiveFromDevice(superSegment, segmentSize: size)
                }
            }
        }, receive: { frames in
            guard frames.count == perRound * piecesPerSuper else {
                throw BenchFailure("node A sent \(frames.count) frames for \(perRound) super-segments")
            }
            let bytesBefore = pair.deviceB.bytes
            for index in 0..<perRound {
                for frame in frames[(index * piecesPerSuper)..<((index + 1) * piecesPerSuper)] { pair.deliverToB(frame) }
                pair.interfaceB.flushToDevice()
            }
            writtenBytes = pair.deviceB.bytes - bytesBefore
        })
        // Every round's bytes reached B's device: segments put back together (one per overlay packet), larger
        // pieces as they came (the coalescer merges MTU-sized segments only).
        let headers = segmentsPerPacket == 1 ? 52 : 52 * piecesPerSuper
        guard writtenBytes == perRound * (headers + count * size) else {
            throw BenchFailure("node B wrote \(writtenBytes) bytes for \(perRound) super-segments")
        }
        let segments = timed.rounds * perRound * count
        let name = segmentsPerPacket >= count ? "tcp, whole super-segment" : "tcp, \(segmentsPerPacket) segment\(segmentsPerPacket == 1 ? "" : "s")/packet"
        return makeCase(name, timed, segments: segments, bytes: segments * (52 + size), baseline: baseline)
    }

    private func makeCase(_ name: String, _ timed: (send: Duration, receive: Duration, rounds: Int, frames: Int),
                          segments: Int, bytes: Int, baseline: Double) -> Case {
        func ns(_ duration: Duration) -> Double { Double(duration.nanoseconds) }
        let perKB = (ns(timed.send) + ns(timed.receive)) / (Double(bytes) / 1_000)
        return Case(name: name, segments: segments, overlay_packets: timed.frames, payload_bytes: bytes,
                    send_ns_per_segment: ns(timed.send) / Double(max(1, segments)),
                    receive_ns_per_segment: ns(timed.receive) / Double(max(1, segments)),
                    ns_per_kb: perKB, vs_seal_open: perKB / baseline)
    }

    /// Sealing and opening 1,260-byte messages on an established channel, ns per KB.
    private func sealOpenNanosecondsPerKB() throws -> Double {
        let fixture = try CryptoBenchmark.Fixture()
        var random = SeededRandom(seed: 7)
        var (sender, receiver) = try fixture.handshake(random: &random)
        let bytes = 1_260
        var opened = ByteBuffer()
        var total = 0
        let clock = ContinuousClock()
        var elapsed = Duration.zero
        var warm = false
        while elapsed < .seconds(seconds / 2) {
            let start = clock.now
            var sum = 0
            for _ in 0..<2_000 {
                var plaintext = ByteBuffer()
                plaintext.reserveCapacity(SecureChannel.sealingHeadroom + bytes + SecureChannel.sealingTailroom)
                plaintext.moveWriterIndex(forwardBy: SecureChannel.sealingHeadroom)
                plaintext.moveReaderIndex(forwardBy: SecureChannel.sealingHeadroom)
                plaintext.writeRepeatingByte(0x45, count: bytes)
                for case .transmit(let frame) in sender.send(consume plaintext, fixture.initiator, random: &random) {
                    for case .deliver(let message) in receiver.receive(frame, fixture.responder, random: &random,
                                                                       openingInto: &opened) {
                        sum &+= message.readableBytes
                    }
                }
            }
            guard sum == 2_000 * bytes else { throw BenchFailure("opened \(sum) bytes of \(2_000 * bytes)") }
            if warm {
                elapsed += clock.now - start
                total += sum
            }
            warm = true
        }
        return Double(elapsed.nanoseconds) / (Double(total) / 1_000)
    }
}
