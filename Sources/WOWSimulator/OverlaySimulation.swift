import Foundation
import Logging
import NIOCore
import Plugins
import Transports
import WOWKit

/// Runs many WOW nodes in one process over the `memory` network on virtual time: the same `Node`, linker,
/// router and overlords as real nodes, deterministic from a seed.
///
/// This file holds the nodes and the phases of a run; `+Topology` what network each node sits behind,
/// `+Measurements` what a run measures, `+CSV` the per-node output.
public final class OverlaySimulation {
    /// One simulated node and what the run measured about it.
    public final class SimulatedNode {
        public let index: Int
        public let host: MemoryHostID
        public let node: Node
        /// What the node was started with (a restart starts it again with the same).
        public let config: NodeConfig
        public let nat: NATBehaviour
        public let startedAt: Timestamp
        public var routableAt: Timestamp?
        public var farLinksAt: Timestamp?
        public var isLive = true

        init(index: Int, host: MemoryHostID, node: Node, config: NodeConfig, nat: NATBehaviour, startedAt: Timestamp) {
            self.index = index
            self.host = host
            self.node = node
            self.config = config
            self.nat = nat
            self.startedAt = startedAt
        }
    }

    public let options: SimulationOptions
    public let scheduler = SimulationScheduler()
    public let network: MemoryNetwork
    public private(set) var nodes: [SimulatedNode] = []
    /// Addresses of live nodes: the true ring.
    private(set) var ring = RingOracle()
    var byAddress: [Address: SimulatedNode] = [:]
    var random: SeededRandom
    /// Makes each node on this simulation's virtual time, with its overlords and logger.
    private let builder: SimulatedNodeBuilder
    private let overlordEntries: [NodeConfig.PluginEntry]
    var delivered: [UInt64: Int] = [:]
    var nextMessageID: UInt64 = 0
    private let farEstimator: FarOverlord

    public private(set) var churnLeft = 0
    /// Hears of the run as it happens, on virtual time: nodes joining, becoming routable and holding their far
    /// links (the moments the CSV writes), crashing, and every connection change. Nil unless someone watches
    /// (`wow sim --web`); set it before `run`.
    public var recorder: OverlayRecorder?
    public private(set) var churnJoined = 0

    public init(options: SimulationOptions, overlords extra: OverlordRegistry? = nil,
                overlordEntries: [NodeConfig.PluginEntry]? = nil) throws {
        try options.validate()
        self.options = options
        self.random = SeededRandom(seed: options.seed)
        self.network = MemoryNetwork(scheduler: scheduler, seed: options.seed ^ 0x5157_4E45_54,
                                     roundTrip: options.roundTrip, loss: options.loss)
        let farSettings = try PluginSettings(yaml: options.farSettingsYAML.isEmpty ? "{}" : options.farSettingsYAML)
        let nearSettings = try PluginSettings(yaml: "per_side: \(options.nearPerSide)")
        self.overlordEntries = overlordEntries ?? [
            .init(name: LeafOverlord.name),
            .init(name: NearOverlord.name, settings: nearSettings),
            .init(name: FarOverlord.name, settings: farSettings),
            .init(name: ShortcutOverlord.name),
        ]
        self.farEstimator = FarOverlord(settings: try farSettings.decode(FarOverlord.Settings.self, for: FarOverlord.name))
        // Each line says when it happened in virtual time (`t`, seconds), which is what a run is read by.
        nonisolated(unsafe) let clock = scheduler  // the simulation runs on one thread
        var logger = Logger(label: "wow.sim", metadataProvider: Logger.MetadataProvider {
            ["t": "\(String(format: "%.4f", clock.now.seconds))"]
        })
        logger.logLevel = SimulatedNodeBuilder.logLevelFromEnvironment ?? .critical
        self.builder = SimulatedNodeBuilder(scheduler: scheduler, epoch: OverlaySimulation.epoch, overlords: extra,
                                            logger: logger)
    }

    public var liveNodes: [SimulatedNode] { nodes.filter(\.isLive) }

    // MARK: - Nodes joining and leaving

    /// Starts one new node now, behind `nat` (drawn from the options' mix when nil), at `address` (drawn when
    /// nil; a secured node only near it: at an address with the same first byte), bootstrapping through a
    /// random live public node (none for the first).
    @discardableResult
    public func addNode(nat chosen: NATBehaviour? = nil, address: Address? = nil) throws -> SimulatedNode {
        // The first node is public: someone has to be reachable to start a ring. Nodes bootstrap through a
        // random live public node, as real deployments list public bootstrap nodes.
        let nat = chosen ?? (nodes.isEmpty ? .open : drawNAT())
        let host = network.addHost(nat: nat)
        let candidates = liveNodes.filter { $0.nat == .open }
        let bootstrapNode = candidates.isEmpty ? nil : candidates[Int(random.next() % UInt64(candidates.count))]
        let drawn = random.address()
        let security = try credentials(forNode: nodes.count, near: address)
        var config = NodeConfig(name: "sim-\(nodes.count)", address: security == nil ? address ?? drawn : nil,
                                transports: Self.transports(for: nat), overlords: overlordEntries,
                                bootstrap: bootstrapNode.map { $0.node.info.uris } ?? [])
        config.sharedNeighboursPerSide = max(options.nearPerSide + 1, 3)
        if options.bootstrapKeys, let bootstrapNode, let key = bootstrapNode.node.info.handshakeKey {
            for uri in bootstrapNode.node.info.uris { config.bootstrapHandshakeKeys[uri] = key }
        }
        if let security { config.security = .secured(security) }
        let node = builder.makeNode(config: config, transports: .memory(network, host: host), random: random.split())
        let simulated = SimulatedNode(index: nodes.count, host: host, node: node, config: config, nat: nat,
                                      startedAt: scheduler.now)
        nodes.append(simulated)
        try start(simulated)
        return simulated
    }

    /// Starts a crashed node again where it ran, with the same config and identity: a new process at the same
    /// address and URIs that knows nothing of the old one's connections and sessions (`wow run` restarted by a
    /// supervisor). Its peers still hold their connections to the old one until they find out.
    @discardableResult
    public func restart(_ crashed: SimulatedNode) throws -> SimulatedNode {
        guard !crashed.isLive, nodes.indices.contains(crashed.index), nodes[crashed.index] === crashed else {
            throw SimulationError.setup("node \(crashed.index) is not a crashed node of this simulation")
        }
        network.setDown(crashed.host, false)
        let node = builder.makeNode(config: crashed.config, transports: .memory(network, host: crashed.host),
                                    random: random.split())
        let simulated = SimulatedNode(index: crashed.index, host: crashed.host, node: node, config: crashed.config,
                                      nat: crashed.nat, startedAt: scheduler.now)
        nodes[crashed.index] = simulated
        try start(simulated)
        return simulated
    }

    /// Hooks a new node's events to the run, puts it in the true ring and starts it.
    private func start(_ simulated: SimulatedNode) throws {
        let node = simulated.node
        node.onTableChange = { [weak self] _ in self?.observe(simulated) }
        node.onDeliver = { [weak self] header, payload in self?.recordDelivery(header, payload) }
        byAddress[node.address] = simulated
        ring.insert(node.address)
        do {
            try node.start()
        } catch {
            throw SimulationError.setup("node \(simulated.index): \(error)")
        }
        recorder?.joined(node.address, name: simulated.config.name, detail: simulated.nat.rawValue, at: scheduler.now.seconds)
        observe(simulated)
    }

    /// The wall-clock time (seconds since 1970) at virtual time zero.
    public static let epoch: Int64 = SimulatedNodeBuilder.defaultEpoch

    /// The simulated network's certificate authority: deterministic from the seed, as everything else.
    public private(set) lazy var authority: NetworkAuthorityKey = {
        var seeded = SeededRandom(seed: options.seed ^ 0x5EC0_12E5)
        let id = (0..<NetworkID.byteCount).map { _ in UInt8(truncatingIfNeeded: seeded.next()) }
        return NetworkAuthorityKey.deterministic(name: "sim", seed: id, network: NetworkID(bytes: id)!,
                                                 now: OverlaySimulation.epoch)
    }()

    /// Node `index`'s key and a router-only certificate valid for ten years (nil when running insecure). A
    /// secured node sits where its certificate says, so to place it `near` an address the key is drawn until
    /// its address shares that address's first byte (about 256 keys).
    public func credentials(forNode index: Int, near: Address? = nil, notAfter: Int64? = nil) throws -> NodeConfig.Secured? {
        guard options.secure else { return nil }
        var variant = 0
        var identity = NodeIdentity.deterministic(seed: Array("sim-\(options.seed)-\(index)".utf8))
        while let near, Address.forNodeKey(identity.publicKey, network: authority.authority.network).high >> 56 != near.high >> 56 {
            variant += 1
            identity = NodeIdentity.deterministic(seed: Array("sim-\(options.seed)-\(index)-\(variant)".utf8))
        }
        let credentials = try authority.member(
            name: "sim-\(index)", identity: identity, notBefore: OverlaySimulation.epoch - 3600,
            notAfter: notAfter ?? OverlaySimulation.epoch + 10 * 365 * 86400, serial: UInt64(index))
        return SimulatedNodeBuilder.secured(credentials)
    }

    /// Crashes a node: its host goes silent and its process state is gone (no goodbye).
    public func crash(_ simulated: SimulatedNode) {
        guard simulated.isLive else { return }
        simulated.isLive = false
        network.setDown(simulated.host, true)
        simulated.node.stop(graceful: false)
        ring.remove(simulated.node.address)
        recorder?.left(simulated.node.address, at: scheduler.now.seconds)
    }

    /// Stops a node as `wow run` does on SIGTERM: it says goodbye to every peer, then its host goes silent.
    public func leave(_ simulated: SimulatedNode) {
        guard simulated.isLive else { return }
        simulated.isLive = false
        simulated.node.stop(graceful: true)
        network.setDown(simulated.host, true)
        ring.remove(simulated.node.address)
        recorder?.left(simulated.node.address, at: scheduler.now.seconds)
    }

    /// The true left and right neighbours of a live node, among the live nodes.
    public func trueNeighbours(of address: Address) -> (left: Address, right: Address)? {
        ring.neighbours(of: address)
    }

    /// Whether the node holds structured connections to both its true neighbours.
    public func isRoutable(_ simulated: SimulatedNode) -> Bool {
        ring.isRoutable(simulated.node.address, table: simulated.node.table)
    }

    private func observe(_ simulated: SimulatedNode) {
        guard simulated.isLive else { return }
        recorder?.observe(simulated.node, at: scheduler.now.seconds)
        if simulated.routableAt == nil, isRoutable(simulated) {
            simulated.routableAt = scheduler.now
            recorder?.routable(simulated.node.address, at: scheduler.now.seconds)
        }
        if simulated.farLinksAt == nil, simulated.routableAt != nil, hasFarLinks(simulated) {
            simulated.farLinksAt = scheduler.now
            recorder?.farLinks(simulated.node.address, at: scheduler.now.seconds)
        }
    }

    private func hasFarLinks(_ simulated: SimulatedNode) -> Bool {
        let table = simulated.node.table
        // The node's own estimate decides how many far links it wants; a ring too small for any counts as done.
        guard let size = FarOverlord.estimateSize(table, perSide: 2) else { return false }
        let far = table.connections.filter { $0.localTypes.contains(farEstimator.connectionType) }.count
        return far >= max(farEstimator.targetCount(size: size), ring.count > 8 ? 1 : 0)
    }

    // MARK: - The whole run

    /// Joins every node, settles, measures; then churns and measures again if asked. `progress` gets a line
    /// now and then for humans.
    public func run(progress: ((String) -> Void)? = nil) throws -> SimulationReport {
        let wallStart = Date()
        // Join phase.
        recorder?.note("\(options.nodes) nodes join, one every \(options.joinInterval)", at: scheduler.now.seconds)
        for i in 0..<options.nodes {
            try addNode()
            if options.joinInterval > .zero { scheduler.run(for: options.joinInterval) }
            if let progress, (i + 1) % max(1, options.nodes / 10) == 0 {
                progress("joined \(i + 1)/\(options.nodes) nodes at t=\(String(format: "%.1f", scheduler.now.seconds))s virtual")
            }
        }
        recorder?.note("joins done; settling", at: scheduler.now.seconds)
        scheduler.run(for: options.settle - .seconds(30))
        let bytesBefore = network.bytesDelivered
        let idleWindow = Duration.seconds(30)
        scheduler.run(for: idleWindow)
        let idleBytes = Double(network.bytesDelivered - bytesBefore)
        var checks = [check(phase: "after_join", messages: options.messages)]
        let connectionsAfterJoin = checks[0].connections_per_node
        if options.flows > 0 {
            recorder?.note("\(options.flows) flows start between unconnected pairs", at: scheduler.now.seconds)
        }
        let shortcuts = options.flows > 0 ? measureShortcuts(flows: options.flows) : nil
        if let shortcuts {
            progress?("flows: \(shortcuts.count)/\(options.flows) got a shortcut within 10 s")
        }
        var nameLookups: SimulationReport.NameLookups?
        if options.nameLookups > 0 {
            let (seconds, correct) = measureNameLookups(count: options.nameLookups)
            nameLookups = SimulationReport.NameLookups(asked: options.nameLookups, found: seconds.count, correct: correct,
                                                        seconds: SimulationStatistics.percentiles(seconds))
            progress?("name lookups: \(correct)/\(options.nameLookups) found the right member")
        }
        progress?("after join: ring_consistent=\(checks[0].ring_consistent) delivery=\(checks[0].delivery_ratio) mean hops=\(String(format: "%.2f", checks[0].hops.mean))")

        // Churn phase.
        if options.churnPerMinute > 0 {
            let interval = Duration.nanoseconds(Int64(60e9 / options.churnPerMinute))
            let end = scheduler.now + options.churnDuration
            recorder?.note("churn: \(options.churnPerMinute) nodes crash and as many join per minute", at: scheduler.now.seconds)
            while scheduler.now + interval <= end {
                scheduler.run(for: interval)
                let live = liveNodes
                if live.count > 2 {
                    crash(live[Int(random.next() % UInt64(live.count))])
                    churnLeft += 1
                }
                try addNode()
                churnJoined += 1
            }
            // Failures are detected after `deadAfter`; give repair time beyond that.
            recorder?.note("churn done; repairing", at: scheduler.now.seconds)
            scheduler.run(for: options.settle + .seconds(30))
            checks.append(check(phase: "after_churn", messages: options.messages))
            progress?("after churn (-\(churnLeft) +\(churnJoined)): ring_consistent=\(checks.last!.ring_consistent) delivery=\(checks.last!.delivery_ratio)")
        }

        if let path = options.csvPath { try writeCSV(to: path) }

        let joined = nodes.filter { $0.routableAt != nil }
        let routable = joined.map { ($0.routableAt! - $0.startedAt).seconds }
        let far = nodes.compactMap { n in n.farLinksAt.map { ($0 - n.startedAt).seconds } }
        let last = checks[checks.count - 1]
        let connections = Double(liveNodes.map { $0.node.table.count }.reduce(0, +))
        var nodeDrops: [String: Int] = [:]
        for n in nodes { nodeDrops.merge(n.node.stats.drops.byName, uniquingKeysWith: +) }
        return SimulationReport(
            nodes: options.nodes, seed: options.seed,
            rtt_ms: [options.roundTrip.lowerBound.seconds * 1000, options.roundTrip.upperBound.seconds * 1000],
            loss: options.loss, ring_consistent: last.ring_consistent, delivery_ratio: last.delivery_ratio,
            join_routable_s: SimulationStatistics.percentiles(routable), join_far_s: SimulationStatistics.percentiles(far),
            hops: checks[0].hops, shortcut_s: shortcuts.map(SimulationStatistics.percentiles), flows: options.flows,
            name_lookups: nameLookups, checks: checks, churn_left: churnLeft, churn_joined: churnJoined,
            connections_per_node: last.connections_per_node,
            idle_bytes_per_s_per_connection: connectionsAfterJoin == 0 ? 0
                : idleBytes / idleWindow.seconds / (connections / 2 == 0 ? 1 : connections / 2),
            packets_sent: network.packetsSent, packets_dropped: network.drops.byName, node_drops: nodeDrops,
            virtual_s: scheduler.now.seconds, events: scheduler.eventsRun,
            wall_s: Date().timeIntervalSince(wallStart))
    }
}
