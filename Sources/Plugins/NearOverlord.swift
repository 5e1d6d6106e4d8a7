import WOWKit

/// `structured.near`: keeps the node linked to its `per_side` nearest nodes on each side of the ring, which
/// makes the ring consistent and greedy routing correct.
///
/// Joining: once a leaf connection exists, a Connect-To-Me goes to the node's own address in `left` and in
/// `right` mode; they reach the true left and right neighbours, which link back. Neighbour lists (in link
/// replies, CTM replies and status messages) then reveal the next nearest, which are linked directly. A side
/// short of neighbours (after failures) repeats the directional CTM with backoff; a slower periodic check
/// finds a nearer node that nobody announced (every `check_s`; every 5 s while the node holds fewer structured
/// links than a ring needs for distinct neighbours on both sides, since it cannot tell a tiny ring from a ring
/// whose other members it has not heard of: a joiner linked over a relay whose CTM replies were lost). A nearer
/// node it failed to link is tried once more; one whose unstructured connection went is linked at once. Near
/// connections this node made that are no longer among its nearest (plus `trim_slack`) are trimmed after
/// `trim_grace_s`.
public final class NearOverlord: ConnectionOverlord, OverlordPlugin {
    public struct Settings: Decodable, Sendable {
        /// Near neighbours kept on each side.
        public var perSide: Int = 2
        /// Extra neighbours per side kept before trimming (hysteresis against flapping).
        public var trimSlack: Int = 1
        /// Minimum age of a near connection before it may be trimmed.
        public var trimGraceSeconds: Double = 20
        /// Seconds between ring checks when nothing is missing.
        public var checkSeconds: Double = 30

        enum CodingKeys: String, CodingKey, CaseIterable {
            case perSide = "per_side", trimSlack = "trim_slack", trimGraceSeconds = "trim_grace_s", checkSeconds = "check_s"
        }

        public init() {}

        public init(from decoder: any Decoder) throws {
            self.init()
            let c = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            perSide = try c.decodeIfPresent(Int.self, forKey: .perSide) ?? perSide
            trimSlack = try c.decodeIfPresent(Int.self, forKey: .trimSlack) ?? trimSlack
            trimGraceSeconds = try c.decodeIfPresent(Double.self, forKey: .trimGraceSeconds) ?? trimGraceSeconds
            checkSeconds = try c.decodeIfPresent(Double.self, forKey: .checkSeconds) ?? checkSeconds
        }
    }

    public static let name = "structured.near"
    public let connectionType: ConnectionType = "structured.near"
    public let tickInterval: Duration = .seconds(1)

    private let settings: Settings
    /// Pending directional CTMs and their next allowed time, per side.
    private var pendingSide: [DeliveryMode: Bool] = [.left: false, .right: false]
    private var nextSideTry: [DeliveryMode: Timestamp] = [.left: .zero, .right: .zero]
    /// The wait before a side's next CTM: 1 s after an answered one, doubled by each unanswered one.
    private var sideBackoff: [DeliveryMode: Duration] = [.left: .seconds(1), .right: .seconds(1)]
    private var nextCheck: Timestamp = .zero
    private var lastCheck: Timestamp = .zero
    /// How soon the periodic check comes again while the ring looks tiny (`ringIsTiny`).
    static let tinyRingCheck = Duration.seconds(5)
    private var nextTrim: Timestamp = .zero
    /// Nodes we are linking to directly after hearing of them.
    private var pendingPeers: Set<Address> = []
    /// Nearer nodes to link to again, and when: one whose link failed (once: a dead node stays nearer than
    /// every live one), one whose unstructured connection went (a trimmed leaf). Nobody else would link such
    /// a node before the next periodic check while farther structured links fill the side's count.
    private var retries: [Address: (peer: NodeInfo, at: Timestamp)] = [:]
    private var retriedAfterFailure: Set<Address> = []
    static let retryDelay = Duration.seconds(2)

    public init(settings: Settings = Settings()) { self.settings = settings }

    public static func makeOverlord(settings: Settings) throws -> any ConnectionOverlord {
        guard (1...8).contains(settings.perSide) else {
            throw PluginError.badSettings(plugin: name, reason: "per_side must be 1...8, got \(settings.perSide)")
        }
        guard settings.trimSlack >= 0, settings.trimGraceSeconds >= 0, settings.checkSeconds > 0 else {
            throw PluginError.badSettings(plugin: name, reason: "trim_slack and trim_grace_s must be >= 0, check_s > 0")
        }
        return NearOverlord(settings: settings)
    }

    public func handle(_ event: OverlordEvent, context: inout OverlordContext) -> [OverlordAction] {
        switch event {
        case .started:
            return upkeep(&context)
        case .tick:
            return upkeep(&context)
        case .connectionAdded(let connection):
            // A fresh leaf on a node outside the ring: join now rather than at the next tick.
            if connection.localTypes == [.leaf] && !context.table.hasStructured { return upkeep(&context) }
            return []
        case .connectionRemoved(let connection):
            // A lost neighbour: look for whoever is now nearest on that side at once. Counting neighbours
            // is not enough, since far links on that side still count as neighbours.
            if connection.isStructured, isAmongNearest(connection.address, context.table, context.local.address) {
                let mode: DeliveryMode = connection.address.isLeft(of: context.local.address) ? .left : .right
                nextSideTry[mode] = .zero
                return upkeep(&context, force: mode)
            }
            if !connection.isStructured { retries[connection.address] = (connection.peer, context.now) }
            return upkeep(&context)
        case .connectSucceeded(let request, _):
            finish(request, context: context, succeeded: true)
            return []
        case .connectFailed(let request, _):
            finish(request, context: context, succeeded: false)
            return []
        case .neighboursLearned(let infos, _):
            return linkToNearer(infos, context: context)
        case .linkFailed, .dataExchanged:
            return []
        }
    }

    private func finish(_ request: ConnectRequest, context: OverlordContext, succeeded: Bool) {
        if request.mode == .exact {
            pendingPeers.remove(request.target)
            if succeeded {
                retriedAfterFailure.remove(request.target)
            } else if let peer = request.peer, retriedAfterFailure.insert(request.target).inserted {
                if retriedAfterFailure.count > 1_024 { retriedAfterFailure = [request.target] }
                retries[request.target] = (peer, context.now + Self.retryDelay)
            }
            return
        }
        pendingSide[request.mode] = false
        if succeeded {
            sideBackoff[request.mode] = .seconds(1)
        } else {
            nextSideTry[request.mode] = context.now + sideBackoff[request.mode, default: .seconds(1)]
            sideBackoff[request.mode] = min(sideBackoff[request.mode, default: .seconds(1)] * 2, .seconds(30))
        }
    }

    /// Whether `address` would be among our `per_side` nearest on its side.
    private func isAmongNearest(_ address: Address, _ table: ConnectionTable, _ local: Address) -> Bool {
        if address.isLeft(of: local) {
            let left = table.leftNeighbours(settings.perSide)
            return left.count < settings.perSide || local.leftDistance(to: address) < local.leftDistance(to: left[left.count - 1].address)
        }
        let right = table.rightNeighbours(settings.perSide)
        return right.count < settings.perSide || local.rightDistance(to: address) < local.rightDistance(to: right[right.count - 1].address)
    }

    private func upkeep(_ context: inout OverlordContext, force forced: DeliveryMode? = nil) -> [OverlordAction] {
        let table = context.table
        // A node just starting with somewhere to join asks at once: its CTMs travel behind the leaf link request.
        let isJoining = table.isEmpty && context.bootstrap.contains { !context.local.uris.contains($0) }
        let hasWayIn = table.hasStructured || Router.gateway(in: table) != nil || isJoining
        guard hasWayIn else { return [] }
        var actions: [OverlordAction] = []
        let periodic = context.now >= (ringIsTiny(table) ? min(nextCheck, lastCheck + Self.tinyRingCheck) : nextCheck)
        if periodic {
            lastCheck = context.now
            let jitter = 0.75 + 0.5 * context.random.unit()
            nextCheck = context.now + .milliseconds(Int64(settings.checkSeconds * 1000 * jitter))
        }
        for mode in [DeliveryMode.left, .right] {
            let have = mode == .left ? table.leftNeighbours(settings.perSide).count : table.rightNeighbours(settings.perSide).count
            let short = have < settings.perSide && (have == 0 || !ringIsTiny(table))
            guard (short || periodic || forced == mode || isUnanswered(mode)), pendingSide[mode] != true,
                  context.now >= nextSideTry[mode, default: .zero] else { continue }
            pendingSide[mode] = true
            actions.append(.connect(ConnectRequest(target: context.local.address, mode: mode, type: connectionType)))
        }
        let due = retries.filter { $0.value.at <= context.now }
        if !due.isEmpty {
            for address in due.keys { retries[address] = nil }
            actions += linkToNearer(due.values.map(\.peer).sorted { $0.address < $1.address }, context: context)
        }
        if context.now >= nextTrim {
            nextTrim = context.now + .seconds(5)
            actions += trim(context)
        }
        return actions
    }

    /// Whether the side's last directional CTM went unanswered (its backoff grew): it is asked again, with
    /// backoff, until one is answered. Counting neighbours cannot tell: a joiner whose CTM for one side was
    /// lost holds far nodes of the other side there (the ring wraps), and waited for the periodic check (35 s
    /// in the simulator).
    private func isUnanswered(_ mode: DeliveryMode) -> Bool { sideBackoff[mode, default: .seconds(1)] > .seconds(1) }

    /// Whether every structured peer already is a neighbour on both sides (a ring of at most 2·per_side+1
    /// nodes), so a side cannot have `per_side` distinct neighbours.
    private func ringIsTiny(_ table: ConnectionTable) -> Bool {
        table.structured.count < 2 * settings.perSide
    }

    /// Links to announced nodes that would be among our nearest on their side.
    private func linkToNearer(_ infos: [NodeInfo], context: OverlordContext) -> [OverlordAction] {
        let table = context.table
        let local = context.local.address
        var actions: [OverlordAction] = []
        for info in infos where info.address != local && !pendingPeers.contains(info.address) && isLinkable(info.address, table) {
            guard isAmongNearest(info.address, table, local) else { continue }
            pendingPeers.insert(info.address)
            actions.append(.connect(ConnectRequest(target: info.address, mode: .exact, type: connectionType, peer: info)))
        }
        return actions
    }

    /// Whether `peer` is no neighbour of ours yet. A connection that routing does not use and that we do not
    /// hold for a purpose of our own (the peer's leaf to us, one left open for the relay frames it carries)
    /// does not make its peer a neighbour: it gains our type. Our own leaf does: while we join, our CTMs are
    /// on their way, and the leaf overlord trims it once we are in the ring.
    private func isLinkable(_ peer: Address, _ table: ConnectionTable) -> Bool {
        guard let connection = table.connection(to: peer) else { return true }
        return !connection.isStructured && connection.localTypes.isEmpty
    }

    private func trim(_ context: OverlordContext) -> [OverlordAction] {
        let table = context.table
        let keep = settings.perSide + settings.trimSlack
        let kept = Set(table.leftNeighbours(keep).map(\.address) + table.rightNeighbours(keep).map(\.address))
        let grace = Duration.milliseconds(Int64(settings.trimGraceSeconds * 1000))
        return table.connections
            .filter { $0.localTypes.contains(connectionType) && !kept.contains($0.address) && context.now - $0.createdAt >= grace }
            .map { .trim(peer: $0.address, type: connectionType) }
    }
}
