import Logging
import NIOCore
import Plugins
import Transports
import WOWSimulator
import XCTest

@testable import WOWKit

/// A recording device: what the virtual network wrote to the host.
final class RecordingDevice: PacketDevice {
    var written: [ByteBuffer] = []
    /// The segment size of each packet written (nil: a single packet).
    var segmentSizes: [Int?] = []
    var takesSuperSegments = false
    func write(_ packet: ByteBuffer) {
        written.append(packet)
        segmentSizes.append(nil)
    }
    func write(_ packet: ByteBuffer, segmentSize: Int) {
        written.append(packet)
        segmentSizes.append(segmentSize)
    }
}

/// IP over the overlay between simulated secured nodes (memory transport, virtual time): packets reach the
/// holder of their destination IP, a forged source is dropped, an absent IP is reported by ICMP.
final class VirtualInterfaceTests: XCTestCase {
    private let scheduler = SimulationScheduler()
    private lazy var memory = MemoryNetwork(scheduler: scheduler, seed: 11)
    private let members = TestNetwork()

    private struct Member {
        var node: Node
        var interface: VirtualInterface
        var device: RecordingDevice
        var ip: VirtualIP
    }

    private func makeNode(_ name: String, ip: VirtualIP?, bootstrap: [TransportURI]) throws -> Node {
        try makeNode(name, ips: ip.map { [$0] } ?? [], bootstrap: bootstrap)
    }

    private func makeNode(_ name: String, ips: [VirtualIP], bootstrap: [TransportURI]) throws -> Node {
        let host = memory.addHost()
        var config = NodeConfig(name: name, transports: [.init(name: MemoryTransport.scheme)],
                                overlords: [.init(name: LeafOverlord.name), .init(name: NearOverlord.name),
                                            .init(name: FarOverlord.name)],
                                bootstrap: bootstrap)
        config.security = .secured(SimulatedNodeBuilder.secured(
            try members.member(name, virtualIPs: ips)))
        let builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: TestNetwork.unixTime)
        let node = builder.makeNode(config: config, transports: .memory(memory, host: host),
                                    random: SeededRandom(seed: UInt64(ips.first?.ipv4 ?? 99)),
                                    logger: Logger(label: name) { _ in SwiftLogNoOpLogHandler() })
        try node.start()
        return node
    }

    /// `count` members at 100.64.0.1... joined in a ring; `dualStack`: each also at fd77:6f77::1..., second.
    private func ring(_ count: Int, takesSuperSegments: Bool = false, dualStack: Bool = false) throws -> [Member] {
        var members: [Member] = []
        for index in 1...count {
            let ip = VirtualIP(0x6440_0000 + UInt32(index))
            let ips = dualStack ? [ip, VirtualIP("fd77:6f77::\(index)")!] : [ip]
            let node = try makeNode("m\(index)", ips: ips, bootstrap: members.first?.node.info.uris ?? [])
            let device = RecordingDevice()
            device.takesSuperSegments = takesSuperSegments
            var settings = VirtualNetwork.Settings()
            if dualStack { settings.mtu = VirtualNetwork.minimumIPv6MTU }
            let interface = try VirtualInterface(node: node, device: device, settings: settings)
            members.append(Member(node: node, interface: interface, device: device, ip: ip))
            scheduler.run(for: .milliseconds(500))
        }
        scheduler.run(for: .seconds(10))
        return members
    }

    func testPacketsReachTheHolderOfTheirDestinationIPAndBack() throws {
        let ring = try ring(12)
        let (a, b) = (ring[0], ring[7])
        let request = VirtualNetworkTests.packet(from: a.ip, to: b.ip, payload: Array("ping".utf8))
        a.interface.receiveFromDevice(request)
        scheduler.run(for: .seconds(2))
        XCTAssertEqual(b.device.written, [request], "delivered, unchanged, to the destination's device only")
        XCTAssertTrue(ring.filter { $0.ip != b.ip }.allSatisfy { $0.device.written.isEmpty })
        let reply = VirtualNetworkTests.packet(from: b.ip, to: a.ip, payload: Array("pong".utf8))
        b.interface.receiveFromDevice(reply)
        scheduler.run(for: .seconds(2))
        XCTAssertEqual(a.device.written, [reply])
        XCTAssertEqual(b.interface.network.stats.packetsToDevice, 1)
        let status = try XCTUnwrap(b.node.status().virtual_network, "wow status shows the device")
        XCTAssertEqual(status.ip, "100.64.0.8")
        XCTAssertEqual(status.packets_to_device, 1)
        XCTAssertEqual(status.packets_from_device, 1)
    }

    /// On a lossy flow (one segment per packet), a 60,000-byte super-segment from A's host crosses the overlay
    /// as 50 segments, one overlay packet each, and reaches B's host as one super-segment again; a device that
    /// takes none gets the 50 segments. On a clean flow (the start) it crosses whole.
    func testASuperSegmentCrossesAsSegmentsAndReachesTheHostPutBackTogether() throws {
        let ring = try ring(2, takesSuperSegments: true)
        let (a, b) = (ring[0], ring[1])
        let clean = ByteBuffer(bytes: TCPPacket.make(payload: TCPPacket.payload(30_000), sequence: 900_000, flags: 0x18,
                                                     sourcePort: 999, source: a.ip.ipv4!, destination: b.ip.ipv4!))
        let cleanBefore = a.node.stats.packetsOut
        a.interface.receiveFromDevice(clean, segmentSize: 1208)
        XCTAssertEqual(a.node.stats.packetsOut - cleanBefore, 1, "a new flow starts whole")
        scheduler.run(for: .milliseconds(200))
        XCTAssertEqual(b.device.written.map(\.readableBytes), [clean.readableBytes])
        XCTAssertEqual(b.device.segmentSizes, [nil], "written as it came: the device cuts it at its MTU")
        b.device.written = []
        b.device.segmentSizes = []
        a.interface.segmentation = SegmentationPolicy(initialSegmentsPerPacket: 1)
        b.interface.segmentation = SegmentationPolicy(initialSegmentsPerPacket: 1)
        let payload = TCPPacket.payload(60_000, seed: 5)
        let superSegment = ByteBuffer(bytes: TCPPacket.make(payload: payload, flags: 0x18, source: a.ip.ipv4!, destination: b.ip.ipv4!))
        let sentBefore = a.node.stats.packetsOut
        a.interface.receiveFromDevice(superSegment, segmentSize: 1208)
        XCTAssertEqual(a.node.stats.packetsOut - sentBefore, 50, "one overlay packet per segment")
        scheduler.run(for: .milliseconds(200))
        XCTAssertEqual(b.device.written.count, 1, "one write to the host")
        XCTAssertEqual(b.device.segmentSizes, [1208])
        let merged = Array(try XCTUnwrap(b.device.written.first).readableBytesView)
        XCTAssertEqual(TCPPacket.payloadOf(merged), payload)
        XCTAssertEqual(TCPPacket.flags(merged), 0x18)
        XCTAssertTrue(TCPPacket.ipChecksumVerifies(merged))
        XCTAssertEqual(a.interface.network.stats.superSegmentsFromDevice, 2)
        XCTAssertEqual(b.interface.network.stats.packetsToDevice, 1 + 50)
        XCTAssertEqual(b.interface.network.stats.superSegmentsToDevice, 2, "the whole one, and the 50 put together")
        XCTAssertEqual(b.interface.coalescer.segmentsMerged, 49)

        // Back to a device that takes no super-segments: the segments as they came.
        a.device.takesSuperSegments = false
        b.interface.receiveFromDevice(ByteBuffer(bytes: TCPPacket.make(payload: payload, flags: 0x18, source: b.ip.ipv4!,
                                                                       destination: a.ip.ipv4!)), segmentSize: 1208)
        scheduler.run(for: .milliseconds(200))
        XCTAssertEqual(a.device.written.count, 50)
        XCTAssertEqual(a.device.written.flatMap { TCPPacket.payloadOf(Array($0.readableBytesView)) }, payload)
        XCTAssertTrue(a.device.written.allSatisfy { $0.readableBytes <= 1260 }, "no packet above the MTU")
    }

    /// The segments of one super-segment for a direct peer take `route`'s forward without the routing decision
    /// (`Node.directEdge`): each still counts as a packet sent to the peer, goes on the connection's edge one hop
    /// long, and arrives. For a node that is no direct peer, each piece is routed as any packet is
    /// (over the ring, sealed end to end) and arrives too.
    func testTheSegmentsOfASuperSegmentReachADirectPeerAndANodeFurtherAway() throws {
        let ring = try ring(12, takesSuperSegments: true)
        let a = ring[0]
        let peer = try XCTUnwrap(ring.dropFirst().first { a.node.table.contains($0.node.address) })
        let far = try XCTUnwrap(ring.dropFirst().first { !a.node.table.contains($0.node.address) },
                                "a 12-node ring leaves a node that is not A's peer")
        for member in ring { member.interface.segmentation = SegmentationPolicy(initialSegmentsPerPacket: 1, adapts: false) }
        var hops: [UInt8] = []
        let delivered = peer.node.onDeliver
        peer.node.onDeliver = { header, payload in
            hops.append(header.hops)
            delivered?(header, payload)
        }

        for (index, target) in [peer, far].enumerated() {
            let payload = TCPPacket.payload(60_000, seed: index + 1)
            let superSegment = ByteBuffer(bytes: TCPPacket.make(payload: payload, flags: 0x18, source: a.ip.ipv4!,
                                                                destination: target.ip.ipv4!))
            let sentBefore = a.node.stats.packetsOut
            let countedBefore = a.node.traffic.traffic(with: target.node.address, at: scheduler.now)?.packetsSent ?? 0
            a.interface.receiveFromDevice(superSegment, segmentSize: 1208)
            if target.ip == peer.ip {
                XCTAssertEqual(a.node.stats.packetsOut - sentBefore, 50, "one overlay packet per segment, at once")
            }  // (to the node further away they wait for the end-to-end handshake, sealed for it)
            XCTAssertEqual(a.node.traffic.traffic(with: target.node.address, at: scheduler.now)?.packetsSent,
                           countedBefore + 50, "each segment counts as a packet sent to its node (\(index))")
            scheduler.run(for: .milliseconds(500))
            XCTAssertEqual(target.device.written.count, 1, "one write to the host (\(index))")
            XCTAssertEqual(TCPPacket.payloadOf(Array(try XCTUnwrap(target.device.written.first).readableBytesView)), payload)
        }
        XCTAssertEqual(hops, Array(repeating: 1, count: 50), "straight onto the peer's edge: one hop each")
        XCTAssertTrue(ring.filter { $0.ip != peer.ip && $0.ip != far.ip }.allSatisfy { $0.device.written.isEmpty })
    }

    func testForgedSourceIPIsDropped() throws {
        let ring = try ring(6)
        let (liar, victim, target) = (ring[1], ring[2], ring[4])
        // The liar's kernel would not send this; a modified node could. Sent as plain overlay data.
        liar.node.send(data: VirtualNetworkTests.packet(from: victim.ip, to: target.ip), to: target.node.address)
        scheduler.run(for: .seconds(2))
        XCTAssertTrue(target.device.written.isEmpty, "a packet claiming another member's IP never reaches the host")
        XCTAssertEqual(target.node.stats.drops.byName["vnet_spoofed_source"], 1)
        // The same node sending from its own IP gets through.
        liar.node.send(data: VirtualNetworkTests.packet(from: liar.ip, to: target.ip), to: target.node.address)
        scheduler.run(for: .seconds(2))
        XCTAssertEqual(target.device.written.count, 1)
    }

    func testPacketForAnIPNoNodeHoldsGetsICMPHostUnreachable() throws {
        let ring = try ring(5)
        let absent = VirtualIP("100.64.3.3")!
        ring[0].interface.receiveFromDevice(VirtualNetworkTests.packet(from: ring[0].ip, to: absent))
        scheduler.run(for: .seconds(3))
        let icmp = try XCTUnwrap(ring[0].device.written.first, "an ICMP error comes back to the sender's host")
        guard case .success(let header) = IPv4Packet.header(of: icmp) else { return XCTFail("not IPv4") }
        XCTAssertEqual(header.source, absent)
        XCTAssertEqual(header.destination, ring[0].ip)
        XCTAssertEqual(Array(icmp.readableBytesView)[20...21], [3, 1])
    }

    func testInterfaceNeedsASecuredNodeWithAVirtualIPInThePrefix() throws {
        let routerOnly = try makeNode("router", ip: nil, bootstrap: [])
        XCTAssertThrowsError(try VirtualInterface(node: routerOnly, device: RecordingDevice(), settings: .init())) {
            XCTAssertEqual($0 as? VirtualNetworkError, .noVirtualIP(certificate: "router"))
        }
        let member = try makeNode("outside", ip: VirtualIP("198.18.1.2"), bootstrap: [])
        XCTAssertThrowsError(try VirtualInterface(node: member, device: RecordingDevice(), settings: .init())) {
            XCTAssertEqual($0 as? VirtualNetworkError, .outsidePrefix(ip: VirtualIP("198.18.1.2")!, prefix: .default))
        }
    }

    /// Dual-stack members sit at the address of their IPv4: a packet to a member's IPv6 finds nobody at the
    /// address that IP hashes to, the name service says where its holder sits, and the packets after go there.
    /// The receiver learns the sender's IPv6 from its certificate, so its replies need no lookup.
    func testIPv6ReachesADualStackMemberThroughTheNameService() throws {
        let ring = try ring(10, dualStack: true)
        scheduler.run(for: .seconds(5))  // names published
        let (a, b) = (ring[1], ring[6])
        let (a6, b6) = (VirtualIP("fd77:6f77::2")!, VirtualIP("fd77:6f77::7")!)
        var sent: [ByteBuffer] = []
        for index in 0..<10 {
            let packet = VirtualNetworkTests.packet6(from: a6, to: b6, payload: Array("ping \(index)".utf8))
            sent.append(packet)
            a.interface.receiveFromDevice(packet)
            scheduler.run(for: .milliseconds(500))
        }
        XCTAssertTrue(a.device.written.isEmpty, "no ICMP error while the name service finds the holder")
        XCTAssertEqual(a.interface.network.learnedHolder(of: b6), b.node.address, "learned")
        XCTAssertGreaterThanOrEqual(b.device.written.count, 8, "every packet after the lookup arrives")
        XCTAssertEqual(b.device.written, Array(sent.suffix(b.device.written.count)), "in order, unchanged")
        let reply = VirtualNetworkTests.packet6(from: b6, to: a6, payload: Array("pong".utf8))
        b.interface.receiveFromDevice(reply)
        scheduler.run(for: .seconds(1))
        XCTAssertEqual(a.device.written, [reply], "the reply goes straight to the sender: its certificate named the IP")
        XCTAssertEqual(b.node.stats.drops.byName["vnet_spoofed_source"], nil)
        XCTAssertEqual(b.node.status().virtual_network?.ips, ["100.64.0.7", "fd77:6f77::7"])

        // An IPv6 no member holds: the lookup says so, and ICMPv6 address unreachable comes back.
        let absent = VirtualIP("fd77:6f77::99")!
        a.interface.receiveFromDevice(VirtualNetworkTests.packet6(from: a6, to: absent))
        scheduler.run(for: .seconds(5))
        let icmp = try XCTUnwrap(a.device.written.last)
        guard case .success(let header) = IPPacket.header(of: icmp) else { return XCTFail("not IP") }
        XCTAssertEqual(header.source, absent)
        XCTAssertEqual(header.protocolNumber, 58)
        XCTAssertEqual(Array(icmp.readableBytesView)[40...41], [1, 3])
    }
}
