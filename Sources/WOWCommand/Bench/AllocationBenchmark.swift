import Foundation
import Logging
import NIOCore
import NIOPosix
import Plugins
import WOWKit
import WOWSimulator

/// The measurements behind `wow bench alloc`: heap allocations per packet on each stage of the data path in
/// steady state, counted by `Scripts/allocation-counter.c` (preloaded) on the thread doing the work. Every
/// stage runs `warmUp` packets first (caches, dictionaries and buffers reach their working size), then counts
/// over `packets`.
///
/// Stages, one IPv4 packet of `size` bytes each time:
/// - `encode`, `encode+seal`, `open`: an edge message encoded alone; encoded and sealed the way a node does
///   (in one buffer with room for the header and tag); opened into a reused buffer, the way a node does.
/// - `node send`: the packet from the device into node A's `VirtualInterface`, routed, encoded, sealed and
///   handed to the edge (TUN → route → encrypt → edge, without the socket).
/// - `node receive`: the frame from the edge into node B: opened, decoded, routed, checked by the virtual
///   network and written to the device (edge → decrypt → route → TUN).
/// - `tcp segments send`, `tcp segments receive`: a 60,400-byte TCP super-segment from the device cut into
///   50 segments of 1,208 bytes, one overlay packet each (the path's policy at one segment per packet), and
///   those segments put back together on the receiving side for a device that takes super-segments; counted
///   per segment.
/// - `udp send+receive`: sealed-frame-sized packets between two `udp` listeners on 127.0.0.1 on one event
///   loop (socket writes, flushes, reads, both ends), counted on the loop's thread.
struct AllocationBenchmark {
    var packets: Int
    var size: Int
    var warmUp = 1_000
    var udpSeconds = 0.5

    struct Stage: Codable, Sendable {
        var name: String
        var packets: Int
        var allocations: UInt64
        var allocations_per_packet: Double
    }

    struct Report: Codable, Sendable {
        var build: String
        var bytes: Int
        var stages: [Stage]
    }

    func run() throws -> Report {
        guard AllocationCounter.isAvailable else { throw BenchFailure(AllocationBenchmark.counterMissing) }
        var stages = try channelStages()
        stages += try nodeStages()
        stages.append(try udpStage())
        let build = BenchBuild.name
        return Report(build: build, bytes: size, stages: stages)
    }

    static let counterMissing = """
        the allocation counter is not loaded: build it and preload it, e.g.
          clang -shared -fPIC -O2 -o /tmp/allocation-counter.so Scripts/allocation-counter.c
          LD_PRELOAD=/tmp/allocation-counter.so wow bench alloc
        """

    /// Runs `body` `warmUp` times, then counts the calling thread's allocations over `packets` runs.
    private func count(_ name: String, _ body: (Int) throws -> Void) rethrows -> Stage {
        for index in 0..<warmUp { try body(index) }
        let before = AllocationCounter.count()
        for index in 0..<packets { try body(warmUp + index) }
        let allocations = AllocationCounter.count() - before
        return Stage(name: name, packets: packets, allocations: allocations,
                     allocations_per_packet: Double(allocations) / Double(packets))
    }

    // MARK: - Channel alone

    private func channelStages() throws -> [Stage] {
        let fixture = try CryptoBenchmark.Fixture()
        var random = SeededRandom(seed: 7)
        var (sender, receiver) = try fixture.handshake(random: &random)
        let address = Address.forVirtualIP(VirtualIP(0x6440_0002), network: fixture.initiator.credentials.authority.network)
        let routed = RoutedPacket(header: RoutedHeader(mode: .exact, payloadType: .data, source: address, destination: address),
                                  payload: ByteBuffer(repeating: 0x45, count: size))
        let message = EdgeMessage.routed(routed)
        var sink = 0
        let encode = count("encode") { _ in sink &+= message.encoded().readableBytes }
        var frames: [ByteBuffer] = []
        frames.reserveCapacity(warmUp + packets)
        // As a node seals an edge message: encoded with room for the header and tag, sealed in that buffer.
        let seal = count("encode+seal") { _ in
            let plaintext = message.encoded(headroom: SecureChannel.sealingHeadroom, tailroom: SecureChannel.sealingTailroom)
            for case .transmit(let frame) in sender.send(consume plaintext, fixture.initiator, random: &random) { frames.append(frame) }
        }
        guard frames.count == warmUp + packets else { throw BenchFailure("sealed \(frames.count) frames") }
        var opened = 0
        var buffer = ByteBuffer()
        let open = count("open") { index in
            for case .deliver(let plaintext) in receiver.receive(frames[index], fixture.responder, random: &random,
                                                                 openingInto: &buffer) {
                opened &+= plaintext.readableBytes
            }
        }
        let expected = (warmUp + packets) * message.encoded().readableBytes
        guard opened == expected else { throw BenchFailure("opened \(opened) bytes of \(expected)") }
        precondition(sink > 0)
        return [encode, seal, open]
    }

    // MARK: - Two nodes

    private func nodeStages() throws -> [Stage] {
        let pair = try BenchNodePair(size: size)
        let (ipA, ipB, interfaceA, interfaceB, deviceB) = (pair.ipA, pair.ipB, pair.interfaceA, pair.interfaceB, pair.deviceB)
        let packet = BenchNodePair.ipPacket(from: ipA, to: ipB, size: size)
        var send: Stage?
        let frames = pair.capture(expected: warmUp + packets) {
            send = count("node send") { _ in interfaceA.receiveFromDevice(packet) }
        }
        guard frames.count == warmUp + packets else {
            throw BenchFailure("node A sent \(frames.count) frames for \(warmUp + packets) packets")
        }
        let deliveredBefore = deviceB.packets
        let receive = count("node receive") { index in pair.deliverToB(frames[index]) }
        guard deviceB.packets - deliveredBefore == warmUp + packets else {
            throw BenchFailure("node B wrote \(deviceB.packets - deliveredBefore) packets of \(warmUp + packets)")
        }

        // TCP super-segments cut into one segment per overlay packet, and put back together at B.
        interfaceA.segmentation = SegmentationPolicy(initialSegmentsPerPacket: 1, adapts: false)
        deviceB.takesSuperSegments = true
        let segmentsPerSuper = 50, segmentSize = 1_208
        let superSegments = (warmUp + packets) / segmentsPerSuper + 1
        let superSegment = BenchNodePair.tcpSuperSegment(from: ipA, to: ipB, payload: segmentsPerSuper * segmentSize)
        var sentSegments = 0
        var tcpSend: Stage?
        let segmentFrames = try pair.capture(expected: superSegments * segmentsPerSuper) {
            tcpSend = try countPerUnit("tcp segments send", units: superSegments, perUnit: segmentsPerSuper) { index in
                var packet = superSegment
                // Each super-segment follows the last, as a stream's do (no retransmission).
                packet.setInteger(UInt32(1 + index * segmentsPerSuper * segmentSize), at: packet.readerIndex + 24)
                interfaceA.receiveFromDevice(packet, segmentSize: segmentSize)
                sentSegments += segmentsPerSuper
            }
        }
        guard segmentFrames.count == sentSegments else {
            throw BenchFailure("node A sent \(segmentFrames.count) frames for \(sentSegments) segments")
        }
        let writtenBefore = deviceB.superSegments
        let tcpReceive = try countPerUnit("tcp segments receive", units: superSegments, perUnit: segmentsPerSuper) { index in
            for frame in segmentFrames[(index * segmentsPerSuper)..<((index + 1) * segmentsPerSuper)] {
                pair.deliverToB(frame)
            }
            interfaceB.flushToDevice()
        }
        guard deviceB.superSegments - writtenBefore == superSegments else {
            throw BenchFailure("node B wrote \(deviceB.superSegments - writtenBefore) super-segments of \(superSegments)")
        }
        return [send!, receive, tcpSend!, tcpReceive]
    }

    /// Runs `body` for `units` units of `perUnit` packets each: a tenth of them (at least one) to warm up, then
    /// counts the rest; the stage's packets are the counted units' packets.
    private func countPerUnit(_ name: String, units: Int, perUnit: Int, _ body: (Int) throws -> Void) throws -> Stage {
        let warm = max(1, units / 10)
        for index in 0..<warm { try body(index) }
        let before = AllocationCounter.count()
        for index in warm..<units { try body(index) }
        let allocations = AllocationCounter.count() - before
        let counted = (units - warm) * perUnit
        return Stage(name: name, packets: counted, allocations: allocations,
                     allocations_per_packet: Double(allocations) / Double(max(1, counted)))
    }

    // MARK: - UDP

    private func udpStage() throws -> Stage {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let frameSize = size + EdgeMessage.routedOverhead + SecureFrame.sealedOverhead
        let benchCase = UDPBenchmark.Case(name: "alloc", size: frameSize, window: 32, segmentationOffload: true,
                                          receiveOffload: true)
        func measure(_ seconds: Double) throws -> (UDPBenchmark.Result, UInt64) {
            let benchmark = try UDPBenchmark(benchCase, seconds: seconds, loop: loop)
            let before = try loop.submit { AllocationCounter.count() }.wait()
            // Safe: the benchmark is used on the loop only, this thread waits.
            nonisolated(unsafe) let unsafeBenchmark = benchmark
            let result = try loop.flatSubmit { try! unsafeBenchmark.run() }.wait()
            let after = try loop.submit { AllocationCounter.count() }.wait()
            return (result, after - before)
        }
        _ = try measure(min(0.2, udpSeconds))
        let (result, allocations) = try measure(udpSeconds)
        return Stage(name: "udp send+receive", packets: result.packets, allocations: allocations,
                     allocations_per_packet: Double(allocations) / Double(max(1, result.packets)))
    }
}
