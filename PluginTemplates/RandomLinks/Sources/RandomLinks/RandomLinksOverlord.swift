import WOWKit

/// A link strategy (a `ConnectionOverlord`): keeps `links` connections to random places on the ring, next to
/// the built-in `leaf`, `structured.near` and `structured.far`.
///
/// Follows the contract of `ConnectionOverlord` (WOWKit's `Sources/WOWKit/Overlords/ConnectionOverlord.swift`):
/// a state machine. The node calls `handle(_:context:)` on its executor with one event at a time and carries
/// out the actions it returns. No sockets, clocks or random generators of its own: time, the connection table
/// and a seeded random stream come in `context`, so the strategy runs unchanged in the simulator (a seed
/// replays a run exactly) and on real networks.
public final class RandomLinksOverlord: ConnectionOverlord, OverlordPlugin {
    /// HOOK: the name configs select the strategy by (`overlords: [{ name: randomlinks }]`).
    public static let name = "randomlinks"

    /// HOOK: your settings, decoded from the config entry's `settings` mapping. Unknown keys are errors, so
    /// a misspelt key cannot silently leave a default in place.
    public struct Settings: Decodable, Sendable {
        /// How many random links to keep.
        public var links = 2

        enum CodingKeys: String, CodingKey, CaseIterable { case links }

        public init(links: Int = 2) { self.links = links }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            links = try container.decodeIfPresent(Int.self, forKey: .links) ?? links
        }
    }

    /// The type this strategy's connections carry: it counts only connections of its own type that it asked
    /// for, and trims only those.
    public let connectionType: ConnectionType = "randomlinks"
    /// How often the node sends `.tick`.
    public let tickInterval: Duration = .seconds(2)

    private let settings: Settings
    /// Connect-To-Me requests sent and not yet answered.
    private var pending = 0

    init(settings: Settings) { self.settings = settings }

    /// The factory `OverlordRegistry.register(RandomLinksOverlord.self)` installs: one overlord per node.
    /// Check settings here; an error stops the node from starting, with this message.
    public static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard (0...64).contains(settings.links) else {
            throw PluginError.badSettings(plugin: name, reason: "links must be 0...64, not \(settings.links)")
        }
        return RandomLinksOverlord(settings: settings)
    }

    /// HOOK: the strategy. One event in, actions out.
    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .tick where context.table.hasStructured:
            // In the ring (routing works): ask for one more link at a time until there are enough.
            let mine = context.table.connections(ofType: connectionType).filter { $0.localTypes.contains(connectionType) }
            if mine.count > settings.links, let extra = mine.first {
                return [.trim(peer: extra.address, type: connectionType)]
            }
            guard mine.count + pending < settings.links else { return [] }
            pending += 1
            // A Connect-To-Me routed to the node nearest a random address: it links back to us.
            return [.connect(ConnectRequest(target: context.random.address(), mode: .nearest, type: connectionType))]
        case .connectSucceeded(let request, _) where request.type == connectionType,
             .connectFailed(let request, _) where request.type == connectionType:
            pending = max(0, pending - 1)
            return []
        default:
            // `.started`, `.connectionAdded`, `.connectionRemoved` (a lost link is replaced on the next tick),
            // `.linkFailed`, `.neighboursLearned`: nothing to do here.
            return []
        }
    }
}
