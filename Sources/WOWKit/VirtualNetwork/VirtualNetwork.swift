import NIOCore

/// IP over the overlay (Brunet's IPOP layer), as a state machine without I/O: it decides what becomes of each
/// IP packet the TUN device hands up and each one the overlay delivers, and it turns routing errors into
/// ICMP. `VirtualInterface` carries its decisions out between a `Node` and a `PacketDevice`.
///
/// - A packet from the device goes to the ring address of its destination IP (`Address.forVirtualIP`): no
///   lookup, no directory. Broadcast and multicast are not carried (dropped and counted): the overlay has no
///   group delivery, and programs that need discovery over it use unicast.
/// - A packet from the overlay is written to the device only if its source IP is one the sending node is
///   entitled to (its ring address is that IP's) and it is addressed to this node's IP. The sender's address
///   is authenticated by its secure session, so a member cannot send from another member's IP.
/// - A packet for an IP no node holds comes back as ICMP host unreachable.
///
/// Not thread-safe; confined to the node's executor like the node.
public struct VirtualNetwork {
    /// What the TUN device is and carries.
    public struct Settings: Sendable, Equatable {
        /// The device's name (`wow0`).
        public var deviceName: String = "wow0"
        /// The virtual network: the device routes it into the overlay.
        public var prefix: VirtualPrefix = .default
        /// The device's MTU.
        public var mtu: Int = VirtualNetwork.defaultMTU
        /// Whether the device asks the host for checksum and TCP segmentation offload: TCP hands up
        /// super-segments of up to 64 KB, sent whole on a clean path and cut into smaller pieces, down to one
        /// segment per overlay packet, on a lossy one (docs/virtual-network.md, "Offloads"). Off only to
        /// compare or debug.
        public var offload = true

        public init() {}
    }

    /// The largest IP packet that, encapsulated on its longest path, still fits a 1500-byte underlay packet
    /// over IPv6 without fragmentation (docs/virtual-network.md, "MTU"): 1500 - 40 (IPv6) - 8 (UDP) - 192
    /// (a relayed connection: outer edge seal 30, edge message 2, routed header 44, tunnel frame 40, then
    /// the inner edge seal 30, edge message 2, routed header 44) = 1260. A ring path sealed end to end adds
    /// 107, a direct connection 76.
    public static let defaultMTU = 1500 - 40 - 8 - longestEncapsulation
    /// Bytes the overlay adds to an IP packet on its longest path (a relayed connection).
    public static let longestEncapsulation = 2 * (SecureFrame.sealedOverhead + 2 + RoutedHeader.byteCount)
        + TunnelFrame.overhead
    /// The largest IP packet the overlay carries on its longest path (an edge packet is at most 65,535
    /// bytes): the largest MTU.
    public static let largestPacket = WireFormat.maximumPacketSize - longestEncapsulation
    /// MTUs allowed: from IPv4's minimum reassembly size up to `largestPacket`. Above the default, the udp
    /// transport cuts encapsulated packets into several datagrams (never IP fragments): fewer packets for
    /// programs that send large datagrams, but one lost datagram loses the whole packet
    /// (docs/virtual-network.md, "MTU").
    public static let mtuRange = 576...largestPacket

    /// What to do with a packet.
    public enum Action: Equatable {
        /// Send this IP packet over the overlay to `address`.
        case send(ByteBuffer, to: Address)
        /// Write this IP packet to the device (a delivered packet, or an ICMP error for the local host).
        case write(ByteBuffer)
        /// Drop it; `reason` names the drop counter.
        case drop(reason: String)
    }

    /// Counters of what crossed the virtual network.
    public struct Stats: Sendable, Equatable {
        public var packetsFromDevice = 0
        public var bytesFromDevice = 0
        public var packetsToDevice = 0
        public var bytesToDevice = 0
        public var icmpSent = 0
        /// TCP super-segments (above the MTU): read from the device (the host's segmentation offload), and
        /// written to it (segments put back together, or pieces of several segments a peer sent as one).
        public var superSegmentsFromDevice = 0
        public var superSegmentsToDevice = 0
        public var drops: [String: Int] = [:]
        public init() {}
    }

    public let settings: Settings
    /// This node's virtual IP (its certificate's first).
    public let localIP: VirtualIP
    public let networkID: NetworkID
    public private(set) var stats = Stats()

    /// Ring addresses of IPs seen lately (a hash per packet would cost more than the rest of the lookup).
    private var addresses: [VirtualIP: Address] = [:]
    /// When each ring address last sent us a packet: a destination that answers needs no quote kept for ICMP.
    private var lastHeard: [Address: Timestamp] = [:]
    /// The start of the last packet sent to a destination that has not answered lately, to quote in ICMP.
    private var quotes: [Address: [UInt8]] = [:]
    /// When the last ICMP error about each destination went to the device (one per second at most).
    private var lastICMP: [Address: Timestamp] = [:]

    /// How many entries each cache holds before it is emptied (bounded memory whatever the traffic).
    static let cacheLimit = 4096
    /// A destination heard from within this long needs no quote.
    static let answerWindow: Duration = .seconds(10)

    public init(settings: Settings, localIP: VirtualIP, networkID: NetworkID) {
        self.settings = settings
        self.localIP = localIP
        self.networkID = networkID
    }

    /// The ring address that `ip`'s holder sits at.
    public mutating func address(of ip: VirtualIP) -> Address {
        if let known = addresses[ip] { return known }
        if addresses.count >= VirtualNetwork.cacheLimit { addresses.removeAll(keepingCapacity: true) }
        let address = Address.forVirtualIP(ip, network: networkID)
        addresses[ip] = address
        return address
    }

    /// An IP packet the device handed up.
    public mutating func fromDevice(_ packet: ByteBuffer, now: Timestamp) -> Action {
        stats.packetsFromDevice += 1
        stats.bytesFromDevice += packet.readableBytes
        if packet.readableBytes > settings.mtu { stats.superSegmentsFromDevice += 1 }
        let header: IPv4Packet.Header
        switch IPv4Packet.header(of: packet) {
        case .success(let parsed): header = parsed
        case .failure(let problem): return drop(problem.reason)
        }
        let destination = header.destination
        if destination.value >> 28 == 0xE { return drop("multicast") }
        if destination.value == UInt32.max || destination == settings.prefix.broadcast { return drop("broadcast") }
        guard settings.prefix.contains(destination) else {
            // Only a route the operator added sends such a packet here: say so to the sender.
            return icmp(code: 0, about: packet, destination: address(of: destination), now: now)
                ?? drop("outside_prefix")
        }
        guard header.source == localIP else { return drop("foreign_source") }
        let ring = address(of: destination)
        if let heard = lastHeard[ring], now - heard < VirtualNetwork.answerWindow {
            quotes[ring] = nil
        } else {
            if quotes.count >= VirtualNetwork.cacheLimit { quotes.removeAll(keepingCapacity: true) }
            quotes[ring] = Array(packet.readableBytesView.prefix(header.headerLength + 8))
        }
        return .send(packet, to: ring)
    }

    /// An IP packet the overlay delivered from the node at `source` (authenticated by its secure session).
    public mutating func fromOverlay(_ packet: ByteBuffer, source: Address, now: Timestamp) -> Action {
        let header: IPv4Packet.Header
        switch IPv4Packet.header(of: packet) {
        case .success(let parsed): header = parsed
        case .failure(let problem): return drop(problem.reason)
        }
        // A node may send only from the IP its ring address is derived from.
        guard address(of: header.source) == source else { return drop("spoofed_source") }
        guard header.destination == localIP else { return drop("not_for_this_node") }
        if lastHeard.count >= VirtualNetwork.cacheLimit { lastHeard.removeAll(keepingCapacity: true) }
        lastHeard[source] = now
        stats.packetsToDevice += 1
        stats.bytesToDevice += packet.readableBytes
        if packet.readableBytes > settings.mtu { stats.superSegmentsToDevice += 1 }
        return .write(packet)
    }

    /// The interface wrote segments the overlay delivered one by one as one super-segment (`TCPCoalescer`).
    public mutating func noteSuperSegmentToDevice() {
        stats.superSegmentsToDevice += 1
    }

    /// The overlay could not deliver a packet this node sent to `error.destination`: an ICMP host unreachable
    /// for the local sender, quoting the packet, when it was an IP packet of ours.
    public mutating func undeliverable(_ error: RoutingError, now: Timestamp) -> ByteBuffer? {
        guard error.payloadType == .data || error.payloadType == .secure,
              let quote = quotes[error.destination] else { return nil }
        guard case .write(let message) = icmp(code: 1, quote: quote, destination: error.destination, now: now) else {
            return nil
        }
        return message
    }

    private mutating func icmp(code: UInt8, about packet: ByteBuffer, destination: Address, now: Timestamp) -> Action? {
        guard case .success(let header) = IPv4Packet.header(of: packet) else { return nil }
        return icmp(code: code, quote: Array(packet.readableBytesView.prefix(header.headerLength + 8)),
                    destination: destination, now: now)
    }

    private mutating func icmp(code: UInt8, quote: [UInt8], destination: Address, now: Timestamp) -> Action? {
        // Never answer an ICMP error with another (RFC 1122): quoted type 3-5, 11, 12 are errors.
        if quote[9] == IPv4Packet.icmpProtocol, quote.count > Int(quote[0] & 0x0F) * 4,
           [3, 4, 5, 11, 12].contains(quote[Int(quote[0] & 0x0F) * 4]) { return nil }
        if let last = lastICMP[destination], now - last < .seconds(1) { return .drop(reason: "icmp_rate_limited") }
        guard let message = IPv4Packet.unreachable(code: code, quoting: quote) else { return nil }
        if lastICMP.count >= VirtualNetwork.cacheLimit { lastICMP.removeAll(keepingCapacity: true) }
        lastICMP[destination] = now
        stats.icmpSent += 1
        return .write(message)
    }

    private mutating func drop(_ reason: String) -> Action {
        stats.drops[reason, default: 0] += 1
        return .drop(reason: reason)
    }
}
