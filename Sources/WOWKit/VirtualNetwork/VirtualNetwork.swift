import NIOCore

/// IP over the overlay (Brunet's IPOP layer), as a state machine without I/O: it decides what becomes of each
/// IP packet (IPv4 or IPv6) the TUN device hands up and each one the overlay delivers, and it turns routing
/// errors into ICMP. `VirtualInterface` carries its decisions out between a `Node` and a `PacketDevice`.
///
/// - A packet from the device goes to the ring address of its destination IP's holder: the address the IP
///   hashes to (`Address.forVirtualIP`), where every node sits for its certificate's first IP, with no lookup
///   and no directory; or, for an IP that is not its holder's first (a dual-stack node's IPv6, say), the
///   address learned from the holder's certificate: one this node holds, one the name service returns when a
///   packet to the hashed address finds nobody there, or one that came with a packet from that IP.
///   Broadcast and multicast are not carried (dropped and counted): the overlay has no group delivery, and
///   programs that need discovery over it use unicast.
/// - A packet from the overlay is written to the device only if its source IP is one the sending node is
///   entitled to (its ring address is that IP's, or its certificate names it) and it is addressed to one of
///   this node's IPs. The sender's address is authenticated by its secure session, so a member cannot send
///   from another member's IP.
/// - A packet for an IP no node holds comes back as ICMP (ICMPv6) unreachable.
///
/// Not thread-safe; confined to the node's executor like the node.
public struct VirtualNetwork {
    /// What the TUN device is and carries.
    public struct Settings: Sendable, Equatable {
        /// The device's name (`wow0`).
        public var deviceName: String = "wow0"
        /// The IPv4 virtual network: the device routes it into the overlay.
        public var prefix: VirtualPrefix = .default
        /// The IPv6 virtual network, routed into the overlay when the node's certificate names an IPv6 address.
        public var ipv6Prefix: VirtualPrefix = .defaultIPv6
        /// The device's MTU.
        public var mtu: Int = VirtualNetwork.defaultMTU
        /// Whether the device asks the host for checksum and TCP segmentation offload: TCP hands up
        /// super-segments of up to 64 KB, sent whole on a clean path and cut into smaller pieces, down to one
        /// segment per overlay packet, on a lossy one (docs/virtual-network.md, "Offloads"). Off only to
        /// compare or debug.
        public var offload = true

        public init() {}

        /// The network of `family`'s addresses.
        public func prefix(for family: VirtualIP.Family) -> VirtualPrefix { family == .v4 ? prefix : ipv6Prefix }

        /// The IPs of `certificate` the device carries: its first IPv4 and its first IPv6 address, each in its
        /// network, in the certificate's order; or why there are none.
        public func localIPs(of certificate: MembershipCertificate) -> Result<[VirtualIP], VirtualNetworkError> {
            guard !certificate.virtualIPs.isEmpty else { return .failure(.noVirtualIP(certificate: certificate.name)) }
            var chosen: [VirtualIP] = []
            for ip in certificate.virtualIPs where !chosen.contains(where: { $0.family == ip.family }) {
                guard prefix(for: ip.family).contains(ip) else {
                    return .failure(.outsidePrefix(ip: ip, prefix: prefix(for: ip.family)))
                }
                chosen.append(ip)
            }
            if chosen.contains(where: { $0.family == .v6 }), mtu < VirtualNetwork.minimumIPv6MTU {
                return .failure(.mtuBelowIPv6Minimum(mtu))
            }
            return .success(chosen)
        }
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
    /// MTUs allowed: from IPv4's minimum reassembly size up to `largestPacket` (a node with an IPv6 address
    /// needs IPv6's minimum, 1280). Above the default, the udp transport cuts encapsulated packets into
    /// several datagrams (never IP fragments): fewer packets for programs that send large datagrams, but one
    /// lost datagram loses the whole packet (docs/virtual-network.md, "MTU").
    public static let mtuRange = 576...largestPacket
    /// IPv6's minimum link MTU (RFC 8200): the device's MTU when it carries IPv6.
    public static let minimumIPv6MTU = 1280

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
    /// This node's virtual IPs on the device: its certificate's first IPv4 and first IPv6 address
    /// (`Settings.localIPs(of:)`); the first of them decides its ring address.
    public let localIPs: [VirtualIP]
    public let networkID: NetworkID
    public private(set) var stats = Stats()

    /// The holder of an IP, from a certificate this node holds (set by the interface: the node knows them).
    public var certificateHolder: (VirtualIP) -> Address? = { _ in nil }
    /// Whether the node at an address proved a certificate that names an IP (its connection's or its end to
    /// end session's): a packet from one of its IPs other than its first is then its own.
    public var isEntitled: (Address, VirtualIP) -> Bool = { _, _ in false }

    /// Ring addresses of IPs seen lately (a hash per packet would cost more than the rest of the lookup).
    private var addresses: [VirtualIP: Address] = [:]
    /// Ring addresses of IPs that are not their holder's first, learned from certificates (kept apart from
    /// the hashes, so that emptying one cache does not lose the other).
    private var learned: [VirtualIP: Address] = [:]
    /// IPs the name service was asked about (a packet to the hashed address found nobody), when, and whether
    /// the answer is still to come.
    private var lookups: [VirtualIP: (at: Timestamp, isPending: Bool)] = [:]
    /// The last IP `address(of:)` answered for, and its holder's address (`remember` forgets it): a flow's
    /// packets, both ways, ask for the same IP one after another, and a lookup is a hash.
    private var lastAddress: (ip: VirtualIP, address: Address)?
    /// When each ring address last sent us a packet: a destination that answers needs no quote kept for ICMP.
    private var lastHeard: [Address: Timestamp] = [:]
    /// The last source written to `lastHeard`, and when: its packets within `heardResolution` of that skip
    /// the write (one hash per packet otherwise).
    private var lastHeardWrite: (source: Address, at: Timestamp)?
    /// The start of the last packet sent to a destination that has not answered lately, to quote in ICMP.
    private var quotes: [Address: [UInt8]] = [:]
    /// When the last ICMP error about each destination went to the device (one per second at most).
    private var lastICMP: [Address: Timestamp] = [:]

    /// How many entries each cache holds before it is emptied (bounded memory whatever the traffic).
    static let cacheLimit = 4096
    /// A destination heard from within this long needs no quote.
    static let answerWindow: Duration = .seconds(10)
    /// How stale `lastHeard` may be: a small part of `answerWindow`.
    static let heardResolution: Duration = .milliseconds(100)
    /// After a lookup of an IP, how long before routing errors about it may start another.
    static let lookupInterval: Duration = .seconds(5)

    public init(settings: Settings, localIPs: [VirtualIP], networkID: NetworkID) {
        self.settings = settings
        self.localIPs = localIPs
        self.networkID = networkID
    }

    /// The ring address that `ip`'s holder sits at.
    public mutating func address(of ip: VirtualIP) -> Address {
        if let last = lastAddress, last.ip == ip { return last.address }
        if let known = addresses[ip] ?? learned[ip] {
            lastAddress = (ip, known)
            return known
        }
        let hashed = Address.forVirtualIP(ip, network: networkID)
        let holder = certificateHolder(ip) ?? hashed
        remember(ip, heldAt: holder, hashed: hashed)
        return holder
    }

    /// Where the holder of `ip`, not its first IP, was learned to sit.
    public func learnedHolder(of ip: VirtualIP) -> Address? { learned[ip] }

    /// `ip`'s holder sits at `address`: the address `ip` hashes to (its holder's first IP, or nobody is known
    /// to hold it), or another (its holder's certificate names it, but not first).
    public mutating func learn(_ ip: VirtualIP, heldAt address: Address) {
        lookups[ip] = nil
        remember(ip, heldAt: address, hashed: Address.forVirtualIP(ip, network: networkID))
    }

    /// Caches where `ip`'s holder sits, apart by whether that is where `ip` hashes to (one SHA-256 per miss).
    private mutating func remember(_ ip: VirtualIP, heldAt address: Address, hashed: Address) {
        lastAddress = nil
        if address == hashed {
            learned[ip] = nil
            if addresses.count >= VirtualNetwork.cacheLimit { addresses.removeAll(keepingCapacity: true) }
            addresses[ip] = address
        } else {
            addresses[ip] = nil
            if learned.count >= VirtualNetwork.cacheLimit { learned.removeAll(keepingCapacity: true) }
            learned[ip] = address
        }
    }

    /// An IP packet the device handed up.
    public mutating func fromDevice(_ packet: ByteBuffer, now: Timestamp) -> Action {
        stats.packetsFromDevice += 1
        stats.bytesFromDevice += packet.readableBytes
        if packet.readableBytes > settings.mtu { stats.superSegmentsFromDevice += 1 }
        let header: IPv4Packet.Header
        switch IPPacket.header(of: packet) {
        case .success(let parsed): header = parsed
        case .failure(let problem): return drop(problem.reason)
        }
        let destination = header.destination
        let prefix = settings.prefix(for: destination.family)
        if let ipv4 = destination.ipv4 {
            if ipv4 >> 28 == 0xE { return drop("multicast") }
            if ipv4 == UInt32.max || destination == prefix.broadcast { return drop("broadcast") }
        } else if destination.high >> 56 == 0xFF {
            return drop("multicast")
        }
        guard prefix.contains(destination) else {
            // Only a route the operator added sends such a packet here: say so to the sender.
            return icmp(host: false, about: packet, destination: address(of: destination), now: now)
                ?? drop("outside_prefix")
        }
        guard localIPs.contains(header.source) else { return drop("foreign_source") }
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
        switch IPPacket.header(of: packet) {
        case .success(let header): return fromOverlay(packet, header: header, source: source, now: now)
        case .failure(let problem): return drop(problem.reason)
        }
    }

    /// The same, for a packet whose IP header was read already (`IPPacket.header(of:)`).
    public mutating func fromOverlay(_ packet: ByteBuffer, header: IPv4Packet.Header, source: Address,
                                     now: Timestamp) -> Action {
        // A node may send only from the IP its ring address is derived from, or another its certificate names.
        if address(of: header.source) != source {
            guard isEntitled(source, header.source) else { return drop("spoofed_source") }
            learn(header.source, heldAt: source)
        }
        guard localIPs.contains(header.destination) else { return drop("not_for_this_node") }
        let writtenLately = lastHeardWrite.map { $0.source == source && now - $0.at < VirtualNetwork.heardResolution } ?? false
        if !writtenLately {
            if lastHeard.count >= VirtualNetwork.cacheLimit { lastHeard.removeAll(keepingCapacity: true) }
            lastHeard[source] = now
            lastHeardWrite = (source, now)
        }
        stats.packetsToDevice += 1
        stats.bytesToDevice += packet.readableBytes
        if packet.readableBytes > settings.mtu { stats.superSegmentsToDevice += 1 }
        return .write(packet)
    }

    /// The interface wrote segments the overlay delivered one by one as one super-segment (`TCPCoalescer`).
    public mutating func noteSuperSegmentToDevice() {
        stats.superSegmentsToDevice += 1
    }

    /// What becomes of a packet of ours the overlay could not deliver.
    public enum Undeliverable: Equatable {
        /// Write this ICMP error to the device.
        case icmp(ByteBuffer)
        /// Nobody sits at the address `ip` hashes to, but a node whose first IP is another may hold it: ask
        /// the name service (`learn` the answer, or `notHeld` when nobody holds it).
        case lookUp(VirtualIP)
        case nothing
    }

    /// The overlay could not deliver a packet this node sent to `error.destination`: when it was an IP
    /// packet of ours, a lookup of its destination IP if that may be held by a node elsewhere, else an ICMP
    /// unreachable for the local sender, quoting the packet.
    public mutating func undeliverable(_ error: RoutingError, now: Timestamp) -> Undeliverable {
        guard error.payloadType == .data || error.payloadType == .secure,
              let quote = quotes[error.destination] else { return .nothing }
        if let destination = VirtualNetwork.destination(quoted: quote), learned[destination] == nil,
           error.destination == Address.forVirtualIP(destination, network: networkID) {
            if let asked = lookups[destination], now - asked.at < VirtualNetwork.lookupInterval {
                // The answer to come decides; one that came said nobody holds it: unreachable.
                if asked.isPending { return .nothing }
            } else {
                if lookups.count >= VirtualNetwork.cacheLimit {
                    lookups = lookups.filter { now - $0.value.at < VirtualNetwork.lookupInterval }
                }
                if lookups.count < VirtualNetwork.cacheLimit {
                    lookups[destination] = (now, true)
                    return .lookUp(destination)
                }
            }
        }
        guard case .write(let message) = icmp(host: true, quote: quote, destination: error.destination, now: now) else {
            return .nothing
        }
        return .icmp(message)
    }

    /// The name service says no member holds `ip` (or gave no answer): an ICMP unreachable for the packet
    /// that was sent to it, if one is quoted.
    public mutating func notHeld(_ ip: VirtualIP, now: Timestamp) -> ByteBuffer? {
        if let asked = lookups[ip] { lookups[ip] = (asked.at, false) }
        let ring = Address.forVirtualIP(ip, network: networkID)
        guard let quote = quotes[ring], case .write(let message) = icmp(host: true, quote: quote, destination: ring, now: now) else {
            return nil
        }
        return message
    }

    /// The destination IP of a quoted packet's header.
    private static func destination(quoted quote: [UInt8]) -> VirtualIP? {
        guard let first = quote.first else { return nil }
        if first >> 4 == 6 { return quote.count >= 40 ? VirtualIP(bytes: quote[24..<40]) : nil }
        return quote.count >= 20 ? VirtualIP(bytes: quote[16..<20]) : nil
    }

    private mutating func icmp(host: Bool, about packet: ByteBuffer, destination: Address, now: Timestamp) -> Action? {
        guard case .success(let header) = IPPacket.header(of: packet) else { return nil }
        return icmp(host: host, quote: Array(packet.readableBytesView.prefix(header.headerLength + 8)),
                    destination: destination, now: now)
    }

    private mutating func icmp(host: Bool, quote: [UInt8], destination: Address, now: Timestamp) -> Action? {
        if let last = lastICMP[destination], now - last < .seconds(1) { return .drop(reason: "icmp_rate_limited") }
        guard let message = IPPacket.unreachable(host: host, quoting: quote) else { return nil }
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
