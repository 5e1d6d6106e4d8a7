/// Application data a node exchanged with each remote node: what link strategies read to connect the nodes
/// that talk to each other (`structured.shortcut`, Brunet's "chota").
///
/// The node counts every exact-mode `data` packet it sends to or takes delivery from another node, sealed end
/// to end or not; it does not count data it forwards for others, nor control traffic. Counting is one
/// dictionary update per packet and allocates nothing once a peer is known.
///
/// Time is cut into windows of `window`, each starting with a peer's first packet after the previous window
/// ended. `PeerTraffic.recentPackets` counts the current window and the one just before it when that one was
/// adjacent: the last one to two windows. The ledger is bounded: it tracks at most `capacity` peers (a new
/// one displaces the least recently active) and forgets a peer idle for `forgetAfter` (`forgetIdle(at:)`,
/// which the node runs with its liveness checks).
public struct TrafficLedger: Sendable {
    /// What a node exchanged with one peer since the ledger started tracking it.
    public struct PeerTraffic: Sendable, Equatable {
        public var packetsSent = 0
        public var packetsReceived = 0
        public var bytesSent = 0
        public var bytesReceived = 0
        /// When the ledger started tracking the peer (the flow's first packet, as far as it remembers).
        public var firstActive: Timestamp
        /// When the last packet went or came.
        public var lastActive: Timestamp
        /// Packets either way in the current window and the adjacent one before it.
        public var recentPackets: Int { windowPackets + previousWindowPackets }
        /// Bytes either way in the same windows.
        public var recentBytes: Int { windowBytes + previousWindowBytes }

        var windowStart: Timestamp
        var windowPackets = 0
        var windowBytes = 0
        var previousWindowPackets = 0
        var previousWindowBytes = 0

        init(at now: Timestamp) {
            firstActive = now
            lastActive = now
            windowStart = now
        }

        /// The counts as of `now`: recent counts drop to zero once two windows passed without a packet.
        public func asOf(_ now: Timestamp, window: Duration) -> PeerTraffic {
            var copy = self
            copy.roll(to: now, window: window)
            return copy
        }

        mutating func roll(to now: Timestamp, window: Duration) {
            let elapsed = now - windowStart
            guard elapsed >= window else { return }
            let adjacent = elapsed < window * 2
            previousWindowPackets = adjacent ? windowPackets : 0
            previousWindowBytes = adjacent ? windowBytes : 0
            windowPackets = 0
            windowBytes = 0
            windowStart = adjacent ? windowStart + window : now
        }
    }

    /// The node posts `OverlordEvent.dataExchanged` for each packet with a node that is not a direct peer
    /// while the flow's recent count is at most this: so at most this many events per window and peer.
    public static let announcedPackets = 8

    /// The length of one counting window.
    public let window: Duration
    /// How many peers the ledger tracks at most.
    public let capacity: Int
    /// How long a peer may stay idle before the ledger forgets it.
    public let forgetAfter: Duration
    public private(set) var peers: [Address: PeerTraffic] = [:]

    /// One-second windows: a request and its answer fall in one window over any WAN round trip below a second.
    public init(window: Duration = .seconds(1), capacity: Int = 1024, forgetAfter: Duration = .seconds(300)) {
        self.window = window
        self.capacity = max(1, capacity)
        self.forgetAfter = forgetAfter
    }

    /// The traffic with `peer` as of `now`, nil when the ledger does not track it.
    public func traffic(with peer: Address, at now: Timestamp) -> PeerTraffic? {
        peers[peer]?.asOf(now, window: window)
    }

    /// Counts one packet of `bytes` to (`isSent`) or from `peer`; returns the peer's recent packet count.
    @discardableResult
    public mutating func record(_ peer: Address, bytes: Int, isSent: Bool, at now: Timestamp) -> Int {
        if peers.count >= capacity, peers[peer] == nil, let oldest = peers.min(by: { ($0.value.lastActive, $0.key) < ($1.value.lastActive, $1.key) }) {
            peers[oldest.key] = nil
        }
        return peers[peer, default: PeerTraffic(at: now)].count(bytes: bytes, isSent: isSent, at: now, window: window)
    }

    /// Forgets the peers idle for `forgetAfter` or longer.
    public mutating func forgetIdle(at now: Timestamp) {
        guard peers.values.contains(where: { now - $0.lastActive >= forgetAfter }) else { return }
        peers = peers.filter { now - $0.value.lastActive < forgetAfter }
    }

    public mutating func removeAll() { peers.removeAll() }
}

extension TrafficLedger.PeerTraffic {
    fileprivate mutating func count(bytes: Int, isSent: Bool, at now: Timestamp, window: Duration) -> Int {
        roll(to: now, window: window)
        if isSent {
            packetsSent += 1
            bytesSent += bytes
        } else {
            packetsReceived += 1
            bytesReceived += bytes
        }
        windowPackets += 1
        windowBytes += bytes
        lastActive = now
        return windowPackets + previousWindowPackets
    }
}
