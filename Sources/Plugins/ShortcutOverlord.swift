import WOWKit

/// `structured.shortcut`: direct connections between nodes that exchange application data (Brunet's "chota"),
/// so a flow leaves multi-hop ring routing within a round trip or two of its first packets.
///
/// It reads the node's traffic ledger (`OverlordContext.traffic`): a node that exchanged at least
/// `min_packets` data packets (either way) with another in the last one to two seconds gets a connection to it,
/// asked for with an exact Connect-To-Me (the peer links back). It reacts to the first packets of a flow as
/// they happen (`.dataExchanged`) and checks the ledger every half second. A peer already connected for
/// another reason (near, far) gets the type added, so the connection outlives the other overlord's trim.
///
/// - One side asks: both ends see the same flow, and a connection both ends asked for would stay open after
///   both trimmed it (each would still see the other's type). The end with the smaller address asks at once;
///   the other asks only when the flow has gone on for `fallback_s` without a shortcut (its peer may not run
///   this strategy, or may not reach it).
/// - A shortcut whose peer exchanged no data for `idle_timeout_s` is trimmed.
/// - At most `max_shortcuts` of its own: when full, the least recently active shortcut makes room if it has
///   been quiet for two traffic windows (so a dormant shortcut gives way to a live flow); when every one is
///   busy the new flow waits, since churning busy shortcuts would cost more than it saves.
/// - A failed connect to a peer is not repeated before `retry_s`, doubling with each failure up to
///   `max_retry_s`.
public final class ShortcutOverlord: ConnectionOverlord, OverlordPlugin {
    public struct Settings: Decodable, Sendable {
        /// Data packets (sent plus received) in the last one to two seconds that make a flow worth a shortcut.
        /// 2: a request and its answer already show a conversation (a 1 packet/s ping gets its shortcut when
        /// the first answer arrives, a bulk flow at its second packet); one stray packet does not.
        public var minPackets: Int = 2
        /// Seconds without data before a shortcut is trimmed.
        public var idleTimeoutSeconds: Double = 60
        /// Shortcuts this node keeps at most.
        public var maxShortcuts: Int = 32
        /// Seconds before asking again for a shortcut that failed, doubling with each failure.
        public var retrySeconds: Double = 5
        public var maxRetrySeconds: Double = 300
        /// Seconds the end with the larger address waits for its peer to ask before asking itself.
        public var fallbackSeconds: Double = 3

        enum CodingKeys: String, CodingKey, CaseIterable {
            case minPackets = "min_packets", idleTimeoutSeconds = "idle_timeout_s", maxShortcuts = "max_shortcuts"
            case retrySeconds = "retry_s", maxRetrySeconds = "max_retry_s", fallbackSeconds = "fallback_s"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            self.init()
            let c = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            minPackets = try c.decodeIfPresent(Int.self, forKey: .minPackets) ?? minPackets
            idleTimeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .idleTimeoutSeconds) ?? idleTimeoutSeconds
            maxShortcuts = try c.decodeIfPresent(Int.self, forKey: .maxShortcuts) ?? maxShortcuts
            retrySeconds = try c.decodeIfPresent(Double.self, forKey: .retrySeconds) ?? retrySeconds
            maxRetrySeconds = try c.decodeIfPresent(Double.self, forKey: .maxRetrySeconds) ?? maxRetrySeconds
            fallbackSeconds = try c.decodeIfPresent(Double.self, forKey: .fallbackSeconds) ?? fallbackSeconds
        }

        /// Why these settings cannot work, naming the key; nil when they can.
        public var problem: String? {
            if !(1...1_000_000).contains(minPackets) { return "min_packets must be 1...1000000, got \(minPackets)" }
            if !(idleTimeoutSeconds >= 1 && idleTimeoutSeconds <= 86_400) {
                return "idle_timeout_s must be 1...86400 seconds, got \(idleTimeoutSeconds)"
            }
            if !(0...4096).contains(maxShortcuts) { return "max_shortcuts must be 0...4096, got \(maxShortcuts)" }
            if !(retrySeconds > 0 && retrySeconds <= 86_400) { return "retry_s must be > 0 and at most 86400, got \(retrySeconds)" }
            if !(maxRetrySeconds >= retrySeconds && maxRetrySeconds <= 86_400) {
                return "max_retry_s must be at least retry_s (\(retrySeconds)) and at most 86400, got \(maxRetrySeconds)"
            }
            if !(fallbackSeconds >= 0 && fallbackSeconds <= 3600) { return "fallback_s must be 0...3600 seconds, got \(fallbackSeconds)" }
            return nil
        }
    }

    public static let name = "structured.shortcut"
    public let connectionType: ConnectionType = "structured.shortcut"
    public let tickInterval: Duration = .milliseconds(500)

    private let settings: Settings
    private let idleTimeout: Duration
    private let fallback: Duration
    /// Connects in flight, by peer.
    private var pending: Set<Address> = []
    /// Failed peers: how often in a row, and when they may be asked again.
    private var failures: [Address: (count: Int, retryAt: Timestamp)] = [:]
    /// When each of our shortcuts last carried data (kept here too: the ledger forgets long-idle peers).
    private var lastActive: [Address: Timestamp] = [:]
    /// When a flow we leave to the peer to ask for (we have the larger address) first qualified.
    private var waitingSince: [Address: Timestamp] = [:]

    public init(settings: Settings = Settings()) {
        self.settings = settings
        self.idleTimeout = .milliseconds(Int64(settings.idleTimeoutSeconds * 1000))
        self.fallback = .milliseconds(Int64(settings.fallbackSeconds * 1000))
    }

    public static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        if let problem = settings.problem { throw PluginError.badSettings(plugin: name, reason: problem) }
        return ShortcutOverlord(settings: settings)
    }

    /// Shortcuts trimmed while handling the current event (the table in the context does not show it yet).
    private var released: Set<Address> = []

    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        released.removeAll()
        switch event {
        case .dataExchanged(let peer, let flow):
            return consider(peer, flow, context: context)
        case .tick:
            return upkeep(context)
        case .connectSucceeded(let request, let connection) where request.type == connectionType:
            pending.remove(request.target)
            failures[request.target] = nil
            waitingSince[request.target] = nil
            lastActive[connection.address] = context.now
            return []
        case .connectFailed(let request, _) where request.type == connectionType:
            pending.remove(request.target)
            let count = (failures[request.target]?.count ?? 0) + 1
            let wait = min(settings.maxRetrySeconds, settings.retrySeconds * Double(1 << min(count - 1, 20)))
            failures[request.target] = (count, context.now + .milliseconds(Int64(wait * 1000)))
            return []
        case .connectionRemoved(let connection):
            lastActive[connection.address] = nil
            return []
        default:
            return []
        }
    }

    /// Our shortcuts: connections carrying our type as a local one.
    private func shortcuts(_ table: ConnectionTable) -> [Connection] {
        table.connections.filter { $0.localTypes.contains(connectionType) && !released.contains($0.address) }
    }

    /// Whether `flow` with `peer` deserves a shortcut now, and the actions to get one.
    private func consider(_ peer: Address, _ flow: TrafficLedger.PeerTraffic, context: OverlordContext) -> [OverlordAction] {
        let now = context.now
        guard peer != context.local.address, flow.recentPackets >= settings.minPackets, !pending.contains(peer) else { return [] }
        let existing = context.table.connection(to: peer)
        if let existing, existing.types.contains(connectionType) { return [] }
        if let failed = failures[peer], now < failed.retryAt { return [] }
        if peer < context.local.address {
            // The peer asks; we step in only if it has not after `fallback`.
            let since = waitingSince[peer] ?? now
            waitingSince[peer] = since
            guard now - since >= fallback else { return [] }
        }
        var actions: [OverlordAction] = []
        let mine = shortcuts(context.table)
        if mine.count + pending.count >= settings.maxShortcuts {
            // Full: the least recently active shortcut gives way if it has been quiet for two windows.
            let quiet = context.traffic.window * 2
            guard let oldest = mine.min(by: { activity($0, context) < activity($1, context) }),
                  now - activity(oldest, context) >= quiet else { return [] }
            actions.append(.trim(peer: oldest.address, type: connectionType))
            lastActive[oldest.address] = nil
            released.insert(oldest.address)
        }
        pending.insert(peer)
        actions.append(.connect(ConnectRequest(target: peer, mode: .exact, type: connectionType)))
        return actions
    }

    /// When the shortcut last carried data, as far as the ledger and this overlord know.
    private func activity(_ connection: Connection, _ context: OverlordContext) -> Timestamp {
        let fromLedger = context.traffic.peers[connection.address]?.lastActive ?? .zero
        return max(lastActive[connection.address] ?? connection.createdAt, fromLedger)
    }

    private func upkeep(_ context: OverlordContext) -> [OverlordAction] {
        let now = context.now
        var actions: [OverlordAction] = []
        // Idle shortcuts go.
        for connection in shortcuts(context.table) {
            let last = activity(connection, context)
            lastActive[connection.address] = last
            if now - last >= idleTimeout {
                actions.append(.trim(peer: connection.address, type: connectionType))
                lastActive[connection.address] = nil
                released.insert(connection.address)
            }
        }
        // Flows the events did not settle: thresholds above what the node announces, the end that waits for
        // its peer, peers connected for other reasons, retries after a backoff. Busiest first, in a stable order.
        let window = context.traffic.window
        let flows = context.traffic.peers.compactMap { peer, traffic -> (Address, TrafficLedger.PeerTraffic)? in
            let flow = traffic.asOf(now, window: window)
            return flow.recentPackets >= settings.minPackets ? (peer, flow) : nil
        }.sorted { $0.1.recentPackets != $1.1.recentPackets ? $0.1.recentPackets > $1.1.recentPackets : $0.0 < $1.0 }
        let qualifying = Set(flows.map(\.0))
        waitingSince = waitingSince.filter { qualifying.contains($0.key) }
        failures = failures.filter { now < $0.value.retryAt + .milliseconds(Int64(settings.maxRetrySeconds * 1000)) }
        for (peer, flow) in flows { actions += consider(peer, flow, context: context) }
        return actions
    }
}
