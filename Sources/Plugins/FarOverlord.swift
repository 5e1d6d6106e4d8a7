import Foundation
import WOWKit

/// `structured.far`: Symphony-style long links. The node estimates the network size N from the spacing of
/// its nearest neighbours, keeps about ceil(0.5·log2 N) far links, and draws each target at a distance from
/// the harmonic (1/d) distribution over [1/N, 1) of the ring, on a random side. Greedy routing over near and
/// far links then takes O(log² N / k) hops.
public final class FarOverlord: ConnectionOverlord, OverlordPlugin {
    public struct Settings: Decodable, Sendable {
        /// Far links = ceil(linksPerLog2N · log2 N), at least `minimum`, at most `maximum`.
        public var linksPerLog2N: Double = 0.5
        public var minimum: Int = 1
        public var maximum: Int = 16
        /// CTMs in flight at once.
        public var parallel: Int = 8
        /// Neighbours per side used to estimate N.
        public var estimatePerSide: Int = 2

        enum CodingKeys: String, CodingKey, CaseIterable {
            case linksPerLog2N = "links_per_log2n", minimum, maximum, parallel, estimatePerSide = "estimate_per_side"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            self.init()
            let c = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            linksPerLog2N = try c.decodeIfPresent(Double.self, forKey: .linksPerLog2N) ?? linksPerLog2N
            minimum = try c.decodeIfPresent(Int.self, forKey: .minimum) ?? minimum
            maximum = try c.decodeIfPresent(Int.self, forKey: .maximum) ?? maximum
            parallel = try c.decodeIfPresent(Int.self, forKey: .parallel) ?? parallel
            estimatePerSide = try c.decodeIfPresent(Int.self, forKey: .estimatePerSide) ?? estimatePerSide
        }
    }

    public static let name = "structured.far"
    public let connectionType: ConnectionType = "structured.far"
    public let tickInterval: Duration = .seconds(1)

    private let settings: Settings
    private var pending = 0
    private var backoffUntil: Timestamp = .zero
    private var failures = 0

    public init(settings: Settings = Settings()) { self.settings = settings }

    public static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard settings.linksPerLog2N > 0, settings.minimum >= 0, settings.maximum >= settings.minimum,
              settings.parallel >= 1, (1...8).contains(settings.estimatePerSide) else {
            throw PluginError.badSettings(plugin: name, reason:
                "need links_per_log2n > 0, 0 <= minimum <= maximum, parallel >= 1, estimate_per_side 1...8")
        }
        return FarOverlord(settings: settings)
    }

    /// The network size estimated from the span of the nearest neighbours: 2k gaps cover that fraction of the ring.
    public static func estimateSize(_ table: ConnectionTable, perSide k: Int) -> Double? {
        let left = table.leftNeighbours(k)
        let right = table.rightNeighbours(k)
        guard let farLeft = left.last, let farRight = right.last else { return nil }
        let local = table.localAddress
        let span = local.leftDistance(to: farLeft.address).ringFraction + local.rightDistance(to: farRight.address).ringFraction
        let gaps = Double(left.count + right.count)
        guard span > 0 else { return nil }
        return min(gaps / span, 1e12)
    }

    /// How many far links a node in a network of `size` nodes should have.
    public func targetCount(size: Double) -> Int {
        // In a ring this small every node is a near neighbour.
        guard size > Double(2 * settings.estimatePerSide + 1) else { return 0 }
        let wanted = Int((settings.linksPerLog2N * log2(size)).rounded(.up))
        return max(settings.minimum, min(settings.maximum, wanted))
    }

    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .tick:
            return upkeep(&context)
        case .connectSucceeded(let request, let connection) where request.type == connectionType:
            pending = max(0, pending - 1)
            failures = 0
            // A "far" link that landed on a near neighbour adds nothing: drop the type and draw again.
            let near = Set(context.table.leftNeighbours(settings.estimatePerSide).map(\.address)
                           + context.table.rightNeighbours(settings.estimatePerSide).map(\.address))
            if near.contains(connection.address) { return [.trim(peer: connection.address, type: connectionType)] + upkeep(&context) }
            return upkeep(&context)
        case .connectFailed(let request, _) where request.type == connectionType:
            pending = max(0, pending - 1)
            failures += 1
            backoffUntil = context.now + .milliseconds(Int64(min(30_000, 500 << min(failures, 6))))
            return []

        default:
            return []
        }
    }

    private func upkeep(_ context: inout OverlordContext) -> [OverlordAction] {
        guard let size = FarOverlord.estimateSize(context.table, perSide: settings.estimatePerSide) else { return [] }
        let target = targetCount(size: size)
        let mine = context.table.connections.filter { $0.localTypes.contains(connectionType) }
        if mine.count > target + 1 {
            // The network shrank (or the estimate fell): let the oldest surplus links go.
            return mine.sorted { $0.createdAt < $1.createdAt }.prefix(mine.count - target)
                .map { .trim(peer: $0.address, type: connectionType) }
        }
        guard context.now >= backoffUntil else { return [] }
        var actions: [OverlordAction] = []
        var missing = target - mine.count - pending
        while missing > 0 && pending < settings.parallel {
            actions.append(.connect(ConnectRequest(target: drawTarget(size: size, context: &context),
                                                   mode: .nearest, type: connectionType)))
            pending += 1
            missing -= 1
        }
        return actions
    }

    /// A target at harmonic distance on a random side: the fraction of the ring d = ½·(N/2)^(u-1), u uniform
    /// in [0, 1), so d is in [1/N, ½) with density proportional to 1/d.
    private func drawTarget(size: Double, context: inout OverlordContext) -> Address {
        let u = context.random.unit()
        let fraction = 0.5 * exp(log(size / 2) * (u - 1))
        let offset = Address(ringFraction: fraction)
        let local = context.local.address
        return context.random.next() & 1 == 0 ? local &+ offset : local &- offset
    }
}
