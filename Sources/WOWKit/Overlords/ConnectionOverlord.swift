/// A link strategy (Brunet's ConnectionOverlord): it watches the connection table and events and asks for
/// the connections it wants, and trims the ones it no longer needs.
///
/// Contract:
/// - An overlord is a state machine: `handle` takes one event and returns the actions the node should carry
///   out. It never touches sockets, clocks or random generators of its own: time, the table and randomness
///   come in `context`. So the same overlord runs in the simulator and for real.
/// - The node calls `handle(.started)` once, then `handle(.tick)` every `tickInterval` (first tick one
///   interval after start), and the other events as they happen, all on the node's executor. `handle` must
///   return quickly and must not keep `context` beyond the call.
/// - Every `.connect` the overlord asks for ends in exactly one `.connectSucceeded` (for a connection that
///   now carries its type) or one `.connectFailed` with the same request; every `.linkToURIs` that fails
///   ends in one `.linkFailed`. `.connectionAdded` is also sent for connections others asked for.
/// - `.trim` removes the overlord's type from a connection; the node closes the connection when no type is
///   left. Overlords must trim only their own types.
public protocol ConnectionOverlord: AnyObject {
    /// The connection type this overlord creates and counts; also its name in config.
    var connectionType: ConnectionType { get }
    /// How often the node sends `.tick`.
    var tickInterval: Duration { get }
    func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction]
}

/// What the node tells an overlord.
public enum OverlordEvent: Sendable {
    case started
    case tick
    /// A connection appeared, or an existing one gained a type.
    case connectionAdded(Connection)
    case connectionRemoved(Connection)
    /// A `.connect` this overlord asked for produced (or found) a connection carrying its type.
    case connectSucceeded(ConnectRequest, Connection)
    /// A `.connect` this overlord asked for did not produce a connection.
    case connectFailed(ConnectRequest, reason: String)
    /// A `.linkToURIs` this overlord asked for failed on every URI.
    case linkFailed([TransportURI], reason: String)
    /// Another node told us about nodes near it (link replies, CTM replies, status messages).
    case neighboursLearned([NodeInfo], from: Address)
    /// Application data went to or came from `peer`, a node that is not a direct peer: posted for each such
    /// packet while the flow's `recentPackets` is at most `TrafficLedger.announcedPackets`, so a strategy can
    /// react to a flow's first packets at once. For anything beyond that, read `context.traffic` on ticks.
    case dataExchanged(with: Address, TrafficLedger.PeerTraffic)
}

/// What an overlord asks the node to do.
public enum OverlordAction: Sendable, Equatable {
    /// Get a connection of `request.type` to the node(s) `request` names: a Connect-To-Me routed to the
    /// target (and, when the peer's URIs are known, a direct link at the same time).
    case connect(ConnectRequest)
    /// Link directly to these URIs, not knowing who is there (bootstrap).
    case linkToURIs([TransportURI], type: ConnectionType)
    /// Remove `type` from the connection to `peer`; the node closes it if no type remains.
    case trim(peer: Address, type: ConnectionType)
}

/// A request for a connection through Connect-To-Me.
public struct ConnectRequest: Sendable, Hashable {
    /// Where the CTM is routed.
    public var target: Address
    /// How it is delivered: `.exact` to a known node, `.nearest` to whoever is nearest to `target`, `.left` /
    /// `.right` to the neighbour on that side of `target`.
    public var mode: DeliveryMode
    public var type: ConnectionType
    /// The peer, when already known (its URIs let the node link directly as well).
    public var peer: NodeInfo?

    public init(target: Address, mode: DeliveryMode, type: ConnectionType, peer: NodeInfo? = nil) {
        self.target = target
        self.mode = mode
        self.type = type
        self.peer = peer
    }
}

/// What an overlord may read (and the random stream it may draw from) while handling one event.
public struct OverlordContext {
    public var local: NodeInfo
    public var table: ConnectionTable
    public var now: Timestamp
    public var random: SeededRandom
    /// The bootstrap URIs from the node's config.
    public var bootstrap: [TransportURI]
    /// Application data the node exchanged with each remote node, read-only (changes are not kept).
    public var traffic: TrafficLedger

    public init(local: NodeInfo, table: ConnectionTable, now: Timestamp, random: SeededRandom, bootstrap: [TransportURI],
                traffic: TrafficLedger = TrafficLedger()) {
        self.local = local
        self.table = table
        self.now = now
        self.random = random
        self.bootstrap = bootstrap
        self.traffic = traffic
    }
}

/// A link-strategy plugin: a name, typed settings, and a factory.
public protocol OverlordPlugin {
    associatedtype Settings: Decodable
    /// The name the config uses (`structured.near`).
    static var name: String { get }
    static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord
}

/// Maps overlord names to factories. The config names overlords; the core names none.
public struct OverlordRegistry {
    public typealias Factory = (PluginSettings) throws -> any ConnectionOverlord
    private var factories: [String: Factory] = [:]

    public init() {}

    public mutating func register<Plugin: OverlordPlugin>(_ plugin: Plugin.Type) {
        factories[Plugin.name] = { settings in
            try Plugin.makeOverlord(settings: try settings.decode(Plugin.Settings.self, for: Plugin.name))
        }
    }

    public mutating func register(name: String, factory: @escaping Factory) { factories[name] = factory }

    public var names: [String] { factories.keys.sorted() }

    public func contains(_ name: String) -> Bool { factories[name] != nil }

    public func makeOverlord(name: String, settings: PluginSettings) throws -> any ConnectionOverlord {
        guard let factory = factories[name] else {
            throw PluginError.unknownPlugin(kind: "overlord", name: name, known: names)
        }
        return try factory(settings)
    }
}
