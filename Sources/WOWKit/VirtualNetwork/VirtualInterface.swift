import NIOCore

/// A node's interface on the virtual network: it carries out `VirtualNetwork`'s decisions between the node
/// and a `PacketDevice`. It takes over the node's `onDeliver` and `onRoutingError`.
///
/// TCP super-segments from the host (segmentation offload) cross the overlay as MTU-sized segments, each its
/// own overlay packet (`TCPSegmenter`), so that a lost underlay datagram costs one TCP segment; on the way
/// to a device that takes super-segments, consecutive segments of a flow are put back together
/// (`TCPCoalescer`) and written at the end of the executor's current batch of work (docs/virtual-network.md,
/// "Offloads").
///
/// Confined to the node's executor.
public final class VirtualInterface {
    public let node: Node
    public let device: any PacketDevice
    public private(set) var network: VirtualNetwork
    /// Segments on their way to the device, merged per flow until the end of the current batch.
    public private(set) var coalescer: TCPCoalescer
    /// How many segments of the host's super-segments go in one overlay packet, per destination (tests and
    /// benchmarks may start it elsewhere than whole).
    public var segmentation = SegmentationPolicy()
    /// The buffer each segment of a super-segment from the device is built in, reused.
    private var segmentScratch = ByteBuffer()
    private var isFlushScheduled = false
    /// The node's event loop when it runs on one: the flush runs there after the I/O at hand.
    private let eventLoop: (any EventLoop)?

    /// Fails when the node is not secured or its certificate names no virtual IP: the node's IP and the right
    /// to send from it come from its membership certificate.
    public init(node: Node, device: any PacketDevice, settings: VirtualNetwork.Settings) throws(VirtualNetworkError) {
        guard let credentials = node.config.security.credentials else { throw .notSecured }
        let localIPs = try settings.localIPs(of: credentials.certificate).get()
        self.node = node
        self.device = device
        self.network = VirtualNetwork(settings: settings, localIPs: localIPs, networkID: credentials.authority.network)
        self.eventLoop = (node.scheduler as? EventLoopScheduler)?.eventLoop
        self.coalescer = TCPCoalescer(mtu: settings.mtu)
        node.onDeliver = { [weak self] header, payload in self?.receiveFromOverlay(header, payload) }
        node.onRoutingError = { [weak self] error in self?.undeliverable(error) }
        node.virtualInterface = self
        network.certificateHolder = { [unowned node] ip in node.knownCertificate(holding: ip)?.entitledAddress }
        network.isEntitled = { [unowned node] peer, ip in node.certificate(of: peer)?.virtualIPs.contains(ip) ?? false }
    }

    /// The node's IPs on the device (the first decides its ring address).
    public var localIPs: [VirtualIP] { network.localIPs }

    /// One IP packet the host sent into the device; with `segmentSize`, a TCP super-segment of segments of
    /// that many payload bytes (segmentation offload), sent on in pieces of as many segments as its flow's
    /// path allows (`SegmentationPolicy`: one per overlay packet on a lossy path, all on a clean one).
    public func receiveFromDevice(_ packet: ByteBuffer, segmentSize: Int? = nil) {
        let action = network.fromDevice(packet, now: node.now)
        guard case .send(let ipPacket, let destination) = action else { return carryOut(action) }
        guard let tcp = TCPHeaders(ipPacket), tcp.payloadLength > 0 else { return node.send(data: ipPacket, to: destination) }
        // Every TCP packet with data counts: the host's retransmissions often go one segment at a time.
        let perPacket = segmentation.segmentsPerPacket(for: tcp)
        guard let segmentSize, segmentSize > 0 else { return node.send(data: ipPacket, to: destination) }
        // Even whole, a piece must fit one overlay packet on the longest path.
        let fitting = max(1, (VirtualNetwork.largestPacket - tcp.headersLength) / segmentSize)
        let node = self.node
        TCPSegmenter.segments(of: ipPacket, segmentSize: segmentSize, segmentsPerPacket: min(perPacket, fitting),
                              scratch: &segmentScratch) { segment in
            node.send(data: segment, to: destination)
        }
    }

    /// A packet the device read but could not hand up; `reason` names the drop counter (after `vnet_`).
    public func deviceDropped(_ reason: String) {
        node.stats.drop(.virtualNetwork(reason))
    }

    private func receiveFromOverlay(_ header: RoutedHeader, _ payload: ByteBuffer) {
        guard header.payloadType == .data, header.mode == .exact else { return }
        // The IP header read once, for the virtual network's checks and the coalescer both.
        let ip: IPv4Packet.Header
        switch IPPacket.header(of: payload) {
        case .success(let parsed): ip = parsed
        // Malformed: the virtual network reads it again to count why (off the packet path).
        case .failure: return carryOut(network.fromOverlay(payload, source: header.source, now: node.now))
        }
        let action = network.fromOverlay(payload, header: ip, source: header.source, now: node.now)
        guard case .write(let packet) = action else { return carryOut(action) }
        writeToDevice(packet, tcp: TCPHeaders(packet, ip: ip))
    }

    private func undeliverable(_ error: RoutingError) {
        switch network.undeliverable(error, now: node.now) {
        case .icmp(let message): device.write(message)
        case .lookUp(let ip):
            node.lookUpName(ip.description) { [weak self] result in
                guard let self else { return }
                if case .success(let record?) = result, record.certificate.virtualIPs.contains(ip) {
                    self.network.learn(ip, heldAt: record.address)
                } else if let message = self.network.notHeld(ip, now: self.node.now) {
                    self.device.write(message)
                }
            }
        case .nothing: break
        }
    }

    private func carryOut(_ action: VirtualNetwork.Action) {
        switch action {
        case .send(let packet, let destination): node.send(data: packet, to: destination)
        case .write(let packet): writeToDevice(packet, tcp: TCPHeaders(packet))
        case .drop(let reason): node.stats.drop(.virtualNetwork(reason))
        }
    }

    /// Writes `packet` to the device, or holds a TCP segment to merge with the next of its flow (then the
    /// flush comes at the end of the executor's current batch of work).
    private func writeToDevice(_ packet: ByteBuffer, tcp: @autoclosure () -> TCPHeaders?) {
        guard device.takesSuperSegments else { return device.write(packet) }
        coalescer.add(packet, tcp: tcp()) { packet, segmentSize in self.emit(packet, segmentSize: segmentSize) }
        if coalescer.isHolding && !isFlushScheduled { scheduleFlush() }
    }

    /// Writes out the segments held: after the I/O the event loop is handling now (the rest of the batch of
    /// datagrams it read), or, on a scheduler without a loop (the simulator), at once in its time.
    private func scheduleFlush() {
        isFlushScheduled = true
        if let eventLoop {
            eventLoop.assumeIsolated().execute { [weak self] in self?.flushToDevice() }
        } else {
            node.scheduler.schedule(after: .zero) { [weak self] in self?.flushToDevice() }
        }
    }

    /// Writes out everything the coalescer holds.
    public func flushToDevice() {
        isFlushScheduled = false
        coalescer.flush { packet, segmentSize in self.emit(packet, segmentSize: segmentSize) }
    }

    private func emit(_ packet: ByteBuffer, segmentSize: Int?) {
        guard let segmentSize else { return device.write(packet) }
        network.noteSuperSegmentToDevice()
        device.write(packet, segmentSize: segmentSize)
    }
}

/// Why a node cannot have a virtual network interface.
public enum VirtualNetworkError: Error, Equatable, CustomStringConvertible {
    case notSecured
    case noVirtualIP(certificate: String)
    case outsidePrefix(ip: VirtualIP, prefix: VirtualPrefix)
    case mtuBelowIPv6Minimum(Int)

    public var description: String {
        switch self {
        case .notSecured:
            return "the virtual network needs a secured node: its IP and the right to send from it come from its "
                + "membership certificate (add a 'security' section; see docs/security.md)"
        case .noVirtualIP(let name):
            return "the certificate of '\(name)' names no virtual IP (a router-only node); issue one with "
                + "`wow cert issue --vip 100.64.0.N` (or an IPv6 one) to join the virtual network"
        case .outsidePrefix(let ip, let prefix):
            let field = prefix.family == .v4 ? "prefix" : "ipv6_prefix"
            return "the certificate's virtual IP \(ip) is outside the virtual network \(prefix); set "
                + "'virtual_network.\(field)' to the network it belongs to"
        case .mtuBelowIPv6Minimum(let mtu):
            return "an MTU of \(mtu) bytes is below IPv6's minimum of \(VirtualNetwork.minimumIPv6MTU), and the "
                + "certificate names an IPv6 virtual IP; raise 'virtual_network.mtu' to at least "
                + "\(VirtualNetwork.minimumIPv6MTU) (or leave it unset)"
        }
    }
}
