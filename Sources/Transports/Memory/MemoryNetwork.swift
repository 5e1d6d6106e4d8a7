import NIOCore
import WOWKit

/// An in-process simulated datagram network on virtual time: the underlay of the `memory` transport.
///
/// Hosts (`addHost`) each sit behind a `NATBehaviour`; a host's listeners (`makeListener`) are its UDP
/// sockets, at `memory://<host>:<port>`. A packet sent from one endpoint to another arrives, unless dropped,
/// half the pair's round trip later, through the sender's NAT (which picks the public source the receiver
/// sees) and the receiver's NAT (which filters it). Every drop is counted by reason.
///
/// Contract:
/// - Everything runs on the thread that runs the `SimulationScheduler`; the network is not thread-safe.
///   Deliveries are scheduled with `scheduleUncancellable`, never made from inside a `send`.
/// - Deterministic: the round trip of a pair of hosts comes from a hash of (seed, smaller id, larger id);
///   losses from a `SeededRandom` seeded from `seed`, drawn once per packet in the order packets are sent.
/// - A NATed host's own URI `memory://<host>:<port>` is private: packets to it from another host are dropped
///   (`private_unreachable`). Its packets leave from `memory://<natHost>:<mappedPort>`, where `natHost` is the
///   id of its NAT (`natHost(of:)`, numbered from `firstNATHostID`). NAT processing happens as the packet
///   leaves (mapping, filter entry) and as it arrives (filter), so two hosts punching holes at about the same
///   time get through when their NATs allow it.
/// - The network holds each listener from `makeListener` until that listener stops.
public final class MemoryNetwork {
    /// Why the network dropped a packet.
    public enum DropReason: String, CaseIterable, DropCounterReason {
        /// Random loss (`loss`).
        case loss
        /// The receiving NAT had no live mapping for the port, or its filter refused the sender.
        case natFiltered = "nat_filtered"
        /// The sender or the receiver is behind a `udp-blocked` firewall.
        case udpBlocked = "udp_blocked"
        /// The sender was down when sending, or the receiver when the packet arrived.
        case hostDown = "host_down"
        /// No such host, or no started listener on the port when the packet arrived.
        case noListener = "no_listener"
        /// The destination is a NATed host's private URI.
        case privateUnreachable = "private_unreachable"
        /// Sent on an edge that was already closed.
        case edgeClosed = "edge_closed"

        public var slot: Int? {
            switch self {
            case .loss: return 0
            case .natFiltered: return 1
            case .udpBlocked: return 2
            case .hostDown: return 3
            case .noListener: return 4
            case .privateUnreachable: return 5
            case .edgeClosed: return 6
            }
        }
    }

    /// The id of the first NAT's public side; hosts must stay below it.
    public static let firstNATHostID = 1_000_001

    private struct Host {
        var nat: NATBehaviour
        /// Index into `nats`, or -1 for hosts without a NAT (open, udp-blocked).
        var natIndex: Int
        var isDown = false
        var listeners: [UInt16: MemoryEdgeListener] = [:]
        var streamListeners: [UInt16: MemoryEdgeListener] = [:]
    }

    /// A stream seen from its connecting side: the listener that connected, and where to.
    private struct StreamKey: Hashable {
        var local: MemoryEndpoint
        var remote: MemoryEndpoint
    }
    /// The ephemeral source endpoint of each connected stream (what the accepting side sees), by its
    /// connecting side; and the way back.
    private var streamSources: [StreamKey: MemoryEndpoint] = [:]
    private var streamOwners: [MemoryEndpoint: StreamKey] = [:]
    private var nextEphemeralPort: UInt16 = 49152

    public let scheduler: SimulationScheduler
    public let seed: UInt64
    public let roundTrip: ClosedRange<Duration>
    public let loss: Double
    public let natMappingTimeout: Duration

    /// Packets handed to the network (by `MemoryEdge.send`), delivered or not.
    public private(set) var packetsSent = 0
    /// Packets handed to a receiving listener.
    public private(set) var packetsDelivered = 0
    /// Readable bytes of the delivered packets.
    public private(set) var bytesDelivered = 0
    /// Hole punches made (`MemoryEdge.punch`); they are not packets: never delivered, not in `packetsSent`.
    public private(set) var punchesSent = 0
    /// The IP TTLs of the punches each host made.
    public private(set) var punchTTLs: [MemoryHostID: Set<UInt8>] = [:]

    /// Drops so far by reason (names "loss", "nat_filtered", ...). `packetsSent` is always
    /// `packetsDelivered + drops.total` plus the packets in flight.
    public private(set) var drops = DropCounter<DropReason>()

    private var hosts: [Host] = []
    private var nats: [MemoryNAT] = []
    private var random: SeededRandom
    private let roundTripLower: Int64
    private let roundTripSpan: UInt64
    private let timeoutNanoseconds: Int64

    /// - Parameters:
    ///   - scheduler: the simulation's virtual time; deliveries are scheduled on it.
    ///   - seed: decides every pair's round trip and which packets are lost.
    ///   - roundTrip: the range pair round trips are drawn from, uniformly; one-way delay is half.
    ///   - loss: the probability, 0...1, that any one packet is lost.
    ///   - natMappingTimeout: how long NAT mappings and filter entries live without outbound traffic.
    public init(scheduler: SimulationScheduler, seed: UInt64,
                roundTrip: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(250),
                loss: Double = 0, natMappingTimeout: Duration = .seconds(60)) {
        precondition(roundTrip.lowerBound >= .zero, "round trips cannot be negative")
        precondition((0...1).contains(loss), "loss is a probability in 0...1")
        self.scheduler = scheduler
        self.seed = seed
        self.roundTrip = roundTrip
        self.loss = loss
        self.natMappingTimeout = natMappingTimeout
        self.random = SeededRandom(seed: seed ^ 0x6C6F_7373_6C6F_7373)
        self.roundTripLower = roundTrip.lowerBound.nanoseconds
        self.roundTripSpan = UInt64(roundTrip.upperBound.nanoseconds - roundTrip.lowerBound.nanoseconds)
        self.timeoutNanoseconds = natMappingTimeout.nanoseconds
    }

    // MARK: Hosts

    /// Adds a host behind `nat`; hosts are numbered 1, 2, ... NATed hosts (other than `udp-blocked`) also get
    /// a NAT with an id of its own (`natHost(of:)`).
    public func addHost(nat: NATBehaviour = .open) -> MemoryHostID {
        let id = hosts.count + 1
        precondition(id < MemoryNetwork.firstNATHostID, "too many hosts on one memory network")
        var natIndex = -1
        switch nat {
        case .fullCone, .restricted, .portRestricted, .symmetric:
            natIndex = nats.count
            nats.append(MemoryNAT(behaviour: nat, publicHost: MemoryNetwork.firstNATHostID + nats.count,
                                  insideHost: id, timeout: timeoutNanoseconds))
        case .open, .udpBlocked:
            break
        }
        hosts.append(Host(nat: nat, natIndex: natIndex))
        return MemoryHostID(rawValue: id)
    }

    /// How many hosts `addHost` has made.
    public var hostCount: Int { hosts.count }

    /// The NAT behaviour `host` was added with.
    public func nat(of host: MemoryHostID) -> NATBehaviour { hosts[index(of: host)].nat }

    /// The public id of the NAT in front of `host` (what others see in its packets' source URI); nil for open
    /// and udp-blocked hosts.
    public func natHost(of host: MemoryHostID) -> MemoryHostID? {
        let natIndex = hosts[index(of: host)].natIndex
        return natIndex < 0 ? nil : MemoryHostID(rawValue: nats[natIndex].publicHost)
    }

    /// Crashes (`true`) or revives (`false`) a host: while down, its packets vanish in both directions
    /// (counted as `host_down`); its listeners and their edges stay but deliver nothing. Its NAT keeps its
    /// state, and mappings expire as usual.
    public func setDown(_ host: MemoryHostID, _ down: Bool) {
        hosts[index(of: host)].isDown = down
    }

    public func isDown(_ host: MemoryHostID) -> Bool { hosts[index(of: host)].isDown }

    /// The NAT in front of `host` loses all its state (a reboot, a rebinding): the host's next packets
    /// leave from new public ports, and peers' packets to the old ones are filtered. No effect on open hosts.
    public func rebindNAT(of host: MemoryHostID) {
        let natIndex = hosts[index(of: host)].natIndex
        if natIndex >= 0 { nats[natIndex].forgetAll() }
    }

    /// A listener on `host` at `port` (a UDP socket), at `memory://<host>:<port>`. One per host:port at a
    /// time; after it stops, the port is free again.
    public func makeListener(host: MemoryHostID, port: UInt16 = 1) -> MemoryEdgeListener {
        let hostIndex = index(of: host)
        precondition(hosts[hostIndex].listeners[port] == nil, "memory://\(host):\(port) already has a listener")
        let listener = MemoryEdgeListener(network: self, local: MemoryEndpoint(host: host.rawValue, port: port))
        hosts[hostIndex].listeners[port] = listener
        return listener
    }

    /// A connection-oriented listener on `host` at `port`, at `memory-stream://<host>:<port>` (think TCP or
    /// TLS through a firewall): a host behind any NAT or firewall, `udp-blocked` included, may connect out to
    /// an open host, and the connection then carries packets both ways with no NAT filtering and no loss (the
    /// stream retransmits); nothing can connect in to a NATed or blocked host. Connecting takes one round trip
    /// and fails after one if nothing listens there. One per host:port at a time.
    public func makeStreamListener(host: MemoryHostID, port: UInt16 = 2) -> MemoryEdgeListener {
        let hostIndex = index(of: host)
        precondition(hosts[hostIndex].streamListeners[port] == nil, "memory-stream://\(host):\(port) already has a listener")
        let listener = MemoryEdgeListener(network: self, local: MemoryEndpoint(host: host.rawValue, port: port), isStream: true)
        hosts[hostIndex].streamListeners[port] = listener
        return listener
    }

    func removeListener(_ listener: MemoryEdgeListener) {
        let local = listener.local
        if listener.isStream {
            guard hosts[local.host - 1].streamListeners[local.port] === listener else { return }
            hosts[local.host - 1].streamListeners[local.port] = nil
        } else {
            guard hosts[local.host - 1].listeners[local.port] === listener else { return }
            hosts[local.host - 1].listeners[local.port] = nil
        }
    }

    private func index(of host: MemoryHostID) -> Int {
        precondition(host.rawValue >= 1 && host.rawValue <= hosts.count, "no host \(host) on this memory network")
        return host.rawValue - 1
    }

    // MARK: Latency

    /// The round trip between two hosts (NAT ids stand for the host behind them): drawn uniformly from
    /// `roundTrip` by a hash of (seed, smaller id, larger id), the same in both directions.
    public func roundTrip(between a: MemoryHostID, and b: MemoryHostID) -> Duration {
        .nanoseconds(roundTripNanoseconds(insideHost(a.rawValue), insideHost(b.rawValue)))
    }

    /// Half the pair's round trip: how long a packet between them takes.
    public func oneWayDelay(between a: MemoryHostID, and b: MemoryHostID) -> Duration {
        .nanoseconds(roundTripNanoseconds(insideHost(a.rawValue), insideHost(b.rawValue)) / 2)
    }

    private func insideHost(_ id: Int) -> Int {
        let natIndex = id - MemoryNetwork.firstNATHostID
        return natIndex >= 0 && natIndex < nats.count ? nats[natIndex].insideHost : id
    }

    private func roundTripNanoseconds(_ a: Int, _ b: Int) -> Int64 {
        if roundTripSpan == 0 { return roundTripLower }
        let smaller = UInt64(truncatingIfNeeded: min(a, b))
        let larger = UInt64(truncatingIfNeeded: max(a, b))
        var hash = MemoryNetwork.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        hash = MemoryNetwork.mix(hash ^ smaller)
        hash = MemoryNetwork.mix(hash ^ (larger &* 0xD6E8_FEB8_6659_FD93))
        let offset = roundTripSpan == .max ? hash : hash % (roundTripSpan + 1)
        return roundTripLower &+ Int64(truncatingIfNeeded: offset)
    }

    /// The SplitMix64 finalizer.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    // MARK: Drops

    private func countDrop(_ reason: DropReason) { drops.count(reason) }

    /// A send on a closed edge: counted as sent and dropped.
    func dropSendOnClosedEdge() {
        packetsSent += 1
        countDrop(.edgeClosed)
    }

    // MARK: Packets

    /// An on-path adversary (security tests): it sees every datagram as it is sent and returns what the
    /// network carries instead — nothing (dropped), the packet as is, a changed packet, or several (replays).
    /// It is given the sending host and the host the packet is addressed to (a NAT's public side for NATed
    /// hosts).
    public var onPath: ((_ packet: ByteBuffer, _ from: MemoryHostID, _ to: MemoryHostID) -> [ByteBuffer])?

    /// Extra delay for datagrams (tests that need one packet late, as a queue on the way delays it): given each
    /// datagram as it is sent, the sending host and the host it is addressed to, how much later than usual it
    /// arrives (datagrams may then overtake each other).
    public var datagramDelay: ((_ packet: ByteBuffer, _ from: MemoryHostID, _ to: MemoryHostID) -> Duration)?

    /// Sends `packet` from a listener's endpoint to `destination` (a public or private endpoint). Called by
    /// `MemoryEdge.send`; the packet arrives later, if at all.
    func send(_ packet: ByteBuffer, from source: MemoryEndpoint, to destination: MemoryEndpoint) {
        guard let onPath else { return transfer(packet, from: source, to: destination) }
        let carried = onPath(packet, MemoryHostID(rawValue: source.host), MemoryHostID(rawValue: destination.host))
        for packet in carried { transfer(packet, from: source, to: destination) }
    }

    private func transfer(_ packet: ByteBuffer, from source: MemoryEndpoint, to destination: MemoryEndpoint) {
        packetsSent += 1
        let sourceIndex = source.host - 1
        if hosts[sourceIndex].isDown { return countDrop(.hostDown) }
        if hosts[sourceIndex].nat == .udpBlocked { return countDrop(.udpBlocked) }

        // Where the packet physically goes, for the delay, and whether it may be sent there at all.
        let destinationHost: Int
        if destination.host == source.host {
            destinationHost = source.host
        } else if destination.host <= hosts.count {
            switch hosts[destination.host - 1].nat {
            case .open: break
            case .udpBlocked: return countDrop(.udpBlocked)
            case .fullCone, .restricted, .portRestricted, .symmetric: return countDrop(.privateUnreachable)
            }
            destinationHost = destination.host
        } else {
            let natIndex = destination.host - MemoryNetwork.firstNATHostID
            guard natIndex >= 0 && natIndex < nats.count else { return countDrop(.noListener) }
            destinationHost = nats[natIndex].insideHost
        }

        var publicSource = source
        let natIndex = hosts[sourceIndex].natIndex
        if natIndex >= 0 && destination.host != source.host {
            let now = scheduler.now.nanoseconds
            guard let port = nats[natIndex].translateOutbound(from: source.port, to: destination, now: now) else {
                return countDrop(.natFiltered)
            }
            publicSource = MemoryEndpoint(host: nats[natIndex].publicHost, port: port)
        }

        // The NAT has seen the packet before the wide area loses it.
        if loss > 0 && random.unit() < loss { return countDrop(.loss) }

        var delay = destinationHost == source.host ? 0 : roundTripNanoseconds(source.host, destinationHost) / 2
        if let datagramDelay {
            delay += datagramDelay(packet, MemoryHostID(rawValue: source.host), MemoryHostID(rawValue: destination.host)).nanoseconds
        }
        scheduler.scheduleUncancellable(after: .nanoseconds(delay)) { [self] in
            arrive(packet, from: publicSource, at: destination, host: destinationHost)
        }
    }

    // MARK: Streams

    /// Connects a stream from `source` to `destination`; `completion` gets nil when connected, else why not,
    /// one round trip later.
    func connectStream(from source: MemoryEndpoint, to destination: MemoryEndpoint,
                       completion: @escaping (String?) -> Void) {
        let reason: String?
        var delay: Int64 = 0
        if destination.host < 1 || destination.host > hosts.count {
            reason = "no such host (a NAT's public side accepts no connections)"
        } else if hosts[source.host - 1].isDown {
            reason = "this host is down"
        } else if destination.host != source.host && hosts[destination.host - 1].nat != .open {
            reason = "the host is behind a NAT or firewall"
            delay = roundTripNanoseconds(source.host, destination.host)
        } else if hosts[destination.host - 1].isDown || hosts[destination.host - 1].streamListeners[destination.port]?.isRunning != true {
            reason = "connection refused"
            delay = roundTripNanoseconds(source.host, destination.host)
        } else {
            reason = nil
            delay = destination.host == source.host ? 0 : roundTripNanoseconds(source.host, destination.host)
            let key = StreamKey(local: source, remote: destination)
            if streamSources[key] == nil {
                // Like a TCP client's, the connection leaves from an ephemeral port, not the listener's.
                let ephemeral = MemoryEndpoint(host: source.host, port: nextEphemeralPort)
                nextEphemeralPort = nextEphemeralPort == .max ? 49152 : nextEphemeralPort + 1
                if let stale = streamOwners[ephemeral] { streamSources[stale] = nil }
                streamSources[key] = ephemeral
                streamOwners[ephemeral] = key
            }
        }
        scheduler.scheduleUncancellable(after: .nanoseconds(delay)) { completion(reason) }
    }

    /// Extra delay for packets on streams (tests that need one stream slower than another, as TCP
    /// connections through different paths or a stalled TLS handshake are): given each packet as it is sent,
    /// the sending host, the receiving host and whether the sender is the side that connected the stream, it
    /// returns how much later than usual the packet arrives. A stream keeps its order only if the delay never
    /// shrinks along it (a constant per stream does).
    public var streamDelay: ((_ packet: ByteBuffer, _ from: MemoryHostID, _ to: MemoryHostID, _ fromConnector: Bool) -> Duration)?

    /// A stream closes at one end (`MemoryEdge.close`): the other end's edge closes one way later, as a TCP
    /// FIN (or the RST of a process that exited) closes it, unless this host is down (a host that went silent
    /// says nothing). What was sent before arrives first. A later connect between the two is a new stream,
    /// from a new ephemeral port.
    func closeStream(from local: MemoryEndpoint, to remote: MemoryEndpoint) {
        let key: StreamKey
        let other: MemoryEndpoint
        if streamSources[StreamKey(local: local, remote: remote)] != nil {
            key = StreamKey(local: local, remote: remote)
            other = remote
        } else if let owner = streamOwners[remote], owner.remote == local {
            key = owner
            other = owner.local
        } else {
            return
        }
        guard let ephemeral = streamSources.removeValue(forKey: key) else { return }
        streamOwners[ephemeral] = nil
        // Seen from the other end, this end is the stream's ephemeral source, or the listener it connected to.
        let seenAs = other == key.remote ? ephemeral : key.remote
        guard !hosts[local.host - 1].isDown else { return }
        let delay = other.host == local.host ? 0 : roundTripNanoseconds(local.host, other.host) / 2
        scheduler.scheduleUncancellable(after: .nanoseconds(delay)) { [self] in
            guard !hosts[other.host - 1].isDown else { return }
            hosts[other.host - 1].streamListeners[other.port]?.streamClosed(by: seenAs)
        }
    }

    /// Sends on an established stream; packets on a stream that was never connected are dropped.
    func sendStream(_ packet: ByteBuffer, from local: MemoryEndpoint, to remote: MemoryEndpoint) {
        packetsSent += 1
        // From the connecting side the packet leaves from the stream's ephemeral port; from the accepting
        // side it goes back to the listener that connected.
        let source: MemoryEndpoint
        let destination: MemoryEndpoint
        if let ephemeral = streamSources[StreamKey(local: local, remote: remote)] {
            (source, destination) = (ephemeral, remote)
        } else if let owner = streamOwners[remote], owner.remote == local {
            (source, destination) = (local, owner.local)
        } else {
            return countDrop(.natFiltered)
        }
        if hosts[source.host - 1].isDown { return countDrop(.hostDown) }
        var delay = destination.host == source.host ? 0 : roundTripNanoseconds(source.host, destination.host) / 2
        if let streamDelay {
            let fromConnector = source != local
            delay += streamDelay(packet, MemoryHostID(rawValue: source.host), MemoryHostID(rawValue: destination.host),
                                 fromConnector).nanoseconds
        }
        scheduler.scheduleUncancellable(after: .nanoseconds(delay)) { [self] in
            handOver(packet, from: source, to: hosts[destination.host - 1].streamListeners[destination.port],
                     host: destination.host)
        }
    }

    /// The last step of every delivery: the receiving host must be up and the port listening.
    private func handOver(_ packet: ByteBuffer, from source: MemoryEndpoint, to listener: MemoryEdgeListener?,
                          host: Int) {
        if hosts[host - 1].isDown { return countDrop(.hostDown) }
        guard let listener, listener.isRunning else { return countDrop(.noListener) }
        packetsDelivered += 1
        bytesDelivered += packet.readableBytes
        listener.receive(packet, from: source)
    }

    /// A hole punch from a listener's endpoint toward `destination` (`MemoryEdge.punch`): the sender's NAT maps
    /// it (creating or refreshing the mapping and filter entry, as for a packet), and it dies right behind the
    /// NAT, as a packet with a small IP TTL dies at the first router beyond it. A TTL below 2 dies in the NAT
    /// before it is mapped (Linux maps a forwarded packet only after the TTL check), so it does nothing; so
    /// does a punch from an open, down or udp-blocked host, or toward another host's private endpoint.
    /// Nothing is delivered and no drop is counted.
    func punch(from source: MemoryEndpoint, to destination: MemoryEndpoint, ttl: UInt8) {
        punchesSent += 1
        punchTTLs[MemoryHostID(rawValue: source.host), default: []].insert(ttl)
        let sourceIndex = source.host - 1
        let natIndex = hosts[sourceIndex].natIndex
        guard ttl >= 2, natIndex >= 0, !hosts[sourceIndex].isDown, destination.host != source.host else { return }
        // Like `send`: nothing leaves toward another host's private endpoint.
        if destination.host <= hosts.count, hosts[destination.host - 1].nat != .open { return }
        _ = nats[natIndex].translateOutbound(from: source.port, to: destination, now: scheduler.now.nanoseconds)
    }

    private func arrive(_ packet: ByteBuffer, from source: MemoryEndpoint, at destination: MemoryEndpoint,
                        host: Int) {
        var port = destination.port
        if destination.host != host {
            let natIndex = destination.host - MemoryNetwork.firstNATHostID
            guard let internalPort = nats[natIndex].translateInbound(to: destination.port, from: source,
                                                                     now: scheduler.now.nanoseconds)
            else { return countDrop(.natFiltered) }
            port = internalPort
        }
        handOver(packet, from: source, to: hosts[host - 1].listeners[port], host: host)
    }
}
