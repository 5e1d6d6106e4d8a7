import WOWKit

/// `leaf`: links to a bootstrap URI so that a new node has a way into the ring, and lets go of that leaf
/// connection once the node has structured neighbours on both sides.
public final class LeafOverlord: ConnectionOverlord, OverlordPlugin {
    public struct Settings: Decodable, Sendable {
        /// Seconds between retries while no bootstrap URI answers (doubling up to `max_retry_s`).
        public var retrySeconds: Double = 1
        public var maxRetrySeconds: Double = 30
        /// How long the leaf is kept after the node has neighbours on both sides.
        public var keepSeconds: Double = 5

        enum CodingKeys: String, CodingKey, CaseIterable {
            case retrySeconds = "retry_s", maxRetrySeconds = "max_retry_s", keepSeconds = "keep_s"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            self.init()
            let c = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            retrySeconds = try c.decodeIfPresent(Double.self, forKey: .retrySeconds) ?? retrySeconds
            maxRetrySeconds = try c.decodeIfPresent(Double.self, forKey: .maxRetrySeconds) ?? maxRetrySeconds
            keepSeconds = try c.decodeIfPresent(Double.self, forKey: .keepSeconds) ?? keepSeconds
        }
    }

    public static let name = "leaf"
    public let connectionType: ConnectionType = .leaf
    public let tickInterval: Duration = .seconds(1)

    private let settings: Settings
    private var isLinking = false
    private var nextTry: Timestamp = .zero
    private var retry: Duration

    public init(settings: Settings = Settings()) {
        self.settings = settings
        self.retry = .milliseconds(Int64(settings.retrySeconds * 1000))
    }

    public static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard settings.retrySeconds > 0, settings.maxRetrySeconds >= settings.retrySeconds, settings.keepSeconds >= 0 else {
            throw PluginError.badSettings(plugin: name, reason: "retry_s must be > 0, max_retry_s >= retry_s, keep_s >= 0")
        }
        return LeafOverlord(settings: settings)
    }

    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .started, .tick:
            return upkeep(&context)
        case .linkFailed:
            isLinking = false
            nextTry = context.now + retry
            retry = min(retry * 2, .milliseconds(Int64(settings.maxRetrySeconds * 1000)))
            return []
        case .connectionAdded(let connection) where connection.localTypes.contains(.leaf):
            isLinking = false
            retry = .milliseconds(Int64(settings.retrySeconds * 1000))
            return []
        default:
            return []
        }
    }

    private func upkeep(_ context: inout OverlordContext) -> [OverlordAction] {
        let table = context.table
        let bootstrap = context.bootstrap.filter { !context.local.uris.contains($0) }
        let inRing = !table.leftNeighbours(1).isEmpty && !table.rightNeighbours(1).isEmpty
        if inRing {
            // Drop our leaf links once the ring holds us.
            return table.connections
                .filter { $0.localTypes.contains(.leaf) && context.now - $0.createdAt >= .milliseconds(Int64(settings.keepSeconds * 1000)) }
                .map { .trim(peer: $0.address, type: .leaf) }
        }
        let hasLeaf = table.connections.contains { $0.localTypes.contains(.leaf) }
        guard !hasLeaf, !isLinking, !bootstrap.isEmpty, !table.hasStructured, context.now >= nextTry else { return [] }
        isLinking = true
        return [.linkToURIs(Self.interleavingTransports(bootstrap), type: .leaf)]
    }

    /// The bootstrap URIs with their transports taken in turn (udp, tcp, tls, udp, tcp, tls, ... in the order
    /// each first appears; each transport's URIs in their order), as RFC 8305 interleaves address families:
    /// the first round races them a moment apart, so where only one transport gets out (a site that lets out
    /// only TCP to 443) its first URI starts after one race step per other transport, not after every URI of
    /// the transports listed before it.
    static func interleavingTransports(_ uris: [TransportURI]) -> [TransportURI] {
        var schemes: [String] = []
        var byScheme: [String: [TransportURI]] = [:]
        for uri in uris {
            if byScheme[uri.scheme] == nil { schemes.append(uri.scheme) }
            byScheme[uri.scheme, default: []].append(uri)
        }
        var result: [TransportURI] = []
        var index = 0
        while result.count < uris.count {
            for scheme in schemes where index < byScheme[scheme, default: []].count {
                result.append(byScheme[scheme]![index])
            }
            index += 1
        }
        return result
    }
}
