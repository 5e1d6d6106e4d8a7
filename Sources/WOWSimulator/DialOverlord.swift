import WOWKit

/// A test link strategy: it asks for one connection of type `test.dial` to one known peer, at its start or,
/// given `dialAfter`, at its first tick, and records how each request ended. Tests use it to make two nodes
/// link to each other at a chosen moment.
public final class DialOverlord: ConnectionOverlord {
    /// The name it is registered under and the type of the connection it asks for.
    public static let name = "test.dial"

    public let connectionType = ConnectionType(stringLiteral: DialOverlord.name)
    public let tickInterval: Duration
    /// The node it dials.
    public let peer: NodeInfo
    /// How each request ended, in order: `ok`, or `failed: <reason>`.
    public private(set) var results: [String] = []
    private let dialsOnStart: Bool
    private var hasDialled = false

    /// Dials `peer` when started, or at its first tick `dialAfter` after the start.
    public init(peer: NodeInfo, dialAfter: Duration? = nil) {
        self.peer = peer
        tickInterval = dialAfter ?? .seconds(60)
        dialsOnStart = dialAfter == nil
    }

    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .started where dialsOnStart, .tick where !dialsOnStart && !hasDialled:
            hasDialled = true
            return [.connect(ConnectRequest(target: peer.address, mode: .exact, type: connectionType, peer: peer))]
        case .connectSucceeded: results.append("ok")
        case .connectFailed(_, let reason): results.append("failed: \(reason)")
        default: break
        }
        return []
    }
}

extension OverlordRegistry {
    /// Registers `overlord` under `DialOverlord.name`: every node built from this registry runs that instance.
    public mutating func register(dialer overlord: DialOverlord) {
        register(name: DialOverlord.name) { _ in overlord }
    }
}
