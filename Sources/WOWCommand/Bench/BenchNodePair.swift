import Foundation
import Logging
import NIOCore
import Plugins
import WOWKit
import WOWSimulator

/// Two secured nodes in this process, linked over the `pipe` transport on a simulation scheduler, each with
/// a virtual interface on a device that only counts: what `wow bench alloc` and `wow bench path` drive the
/// data path through, one side at a time (A's sends are captured, then handed to B's edge).
final class BenchNodePair {
    /// A device that only counts what it is given.
    final class CountingDevice: PacketDevice {
        var packets = 0
        var bytes = 0
        var superSegments = 0
        var takesSuperSegments = false
        func write(_ packet: ByteBuffer) {
            packets += 1
            bytes += packet.readableBytes
        }
        func write(_ packet: ByteBuffer, segmentSize: Int) {
            superSegments += 1
            bytes += packet.readableBytes
        }
    }

    let ipA = VirtualIP(0x6440_0001), ipB = VirtualIP(0x6440_0002)
    let scheduler = SimulationScheduler()
    let pipes: PipeNetwork
    let a: Node, b: Node
    let interfaceA: VirtualInterface, interfaceB: VirtualInterface
    let deviceB: CountingDevice
    /// B's edge from A: frames A sent are handed to it.
    let edgeB: PipeEdge

    /// Starts both, links them, and sends one `size`-byte packet each way (so each side's virtual network has
    /// heard the other).
    init(size: Int) throws {
        let scheduler = self.scheduler
        let pipes = PipeNetwork(scheduler: scheduler)
        self.pipes = pipes
        let now = Int64(Date().timeIntervalSince1970)
        let authority = NetworkAuthorityKey.create(name: "bench", now: now)
        // Random session keys, as real nodes draw them (not `SimulatedNodeBuilder.secured`).
        let builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: now)
        func member(_ name: String, _ ip: VirtualIP, bootstrap: [TransportURI]) throws -> (Node, VirtualInterface, CountingDevice) {
            var transports = TransportRegistry()
            transports.register(scheme: PipeNetwork.scheme) { _, _ in pipes.makeListener(name) }
            var config = NodeConfig(name: name, transports: [.init(name: PipeNetwork.scheme)],
                                    overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name)],
                                    bootstrap: bootstrap)
            let credentials = try authority.member(name: name, virtualIPs: [ip], notBefore: now - 60, notAfter: now + 86_400,
                                                   serial: UInt64(ip.ipv4!))
            config.security = .secured(NodeConfig.Secured(credentials: credentials))
            let node = builder.makeNode(config: config, transports: transports, random: SeededRandom(seed: UInt64(ip.ipv4!)),
                                        logger: Logger(label: name) { _ in SwiftLogNoOpLogHandler() })
            try node.start()
            let device = CountingDevice()
            let interface = try VirtualInterface(node: node, device: device, settings: VirtualNetwork.Settings())
            return (node, interface, device)
        }
        let deviceA: CountingDevice
        (a, interfaceA, deviceA) = try member("a", ipA, bootstrap: [])
        scheduler.run(for: .milliseconds(500))
        (b, interfaceB, deviceB) = try member("b", ipB, bootstrap: a.info.uris)
        scheduler.run(for: .seconds(5))
        guard a.isDirectPeer(b.address), b.isDirectPeer(a.address) else {
            throw BenchFailure("the two nodes did not link")
        }
        interfaceA.receiveFromDevice(BenchNodePair.ipPacket(from: ipA, to: ipB, size: size))
        interfaceB.receiveFromDevice(BenchNodePair.ipPacket(from: ipB, to: ipA, size: size))
        scheduler.run(for: .milliseconds(10))
        guard deviceB.packets == 1, deviceA.packets == 1, let edgeB = pipes.edge(at: "b", from: "a") else {
            throw BenchFailure("the first packets did not arrive")
        }
        self.edgeB = edgeB
    }

    /// What A sends while `body` runs, kept instead of delivered (`expected` frames, room reserved).
    func capture(expected: Int, _ body: () throws -> Void) rethrows -> [ByteBuffer] {
        pipes.captured = []
        pipes.captured.reserveCapacity(expected)
        pipes.isCapturing = true
        defer { pipes.isCapturing = false }
        try body()
        let frames = pipes.captured
        pipes.captured = []
        return frames
    }

    /// Hands one frame A sent to B, as its edge would on receiving it.
    func deliverToB(_ frame: ByteBuffer) {
        edgeB.delegate?.edge(edgeB, didReceive: frame)
    }

    /// A TCP/IPv4 super-segment with a 32-byte TCP header (ACK, timestamps) and `payload` bytes, its sequence
    /// number `sequence`.
    static func tcpSuperSegment(from source: VirtualIP, to destination: VirtualIP, payload: Int,
                                sequence: UInt32 = 1) -> ByteBuffer {
        let total = 52 + payload
        var buffer = ByteBuffer()
        buffer.writeBytes([0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0] as [UInt8])
        buffer.writeInteger(source.ipv4!, endianness: .big)
        buffer.writeInteger(destination.ipv4!, endianness: .big)
        buffer.writeBytes([0x30, 0x39, 0x14, 0x51] as [UInt8])
        buffer.writeInteger(sequence, endianness: .big)
        buffer.writeBytes([0, 0, 0, 1, 0x80, 0x10, 0xFF, 0xFF, 0, 0, 0, 0,
                           1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] as [UInt8])
        buffer.writeRepeatingByte(0xCD, count: payload)
        return buffer
    }

    /// An IPv4 (UDP protocol) packet of `size` bytes.
    static func ipPacket(from source: VirtualIP, to destination: VirtualIP, size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes([0x45, 0, UInt8(size >> 8), UInt8(size & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0] as [UInt8])
        buffer.writeInteger(source.ipv4!, endianness: .big)
        buffer.writeInteger(destination.ipv4!, endianness: .big)
        buffer.writeRepeatingByte(0xAB, count: size - 20)
        return buffer
    }
}
