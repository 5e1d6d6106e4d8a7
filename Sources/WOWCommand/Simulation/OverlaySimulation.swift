import Foundation
import Logging
import NIOCore
import Plugins
import Transports
import WOWKit

/// Runs many WOW nodes in one process over the `memory` network on virtual time: the same `Node`, linker,
/// router and overlords as real nodes, deterministic from a seed.
public final class OverlaySimulation {
    /// One simulated node and what the run measured about it.
    public final class SimulatedNode {
        public let index: Int
        public let host: MemoryHostID
        public let node: Node
        public let nat: NATBehaviour
        public let startedAt: Timestamp
        public var routableAt: Timestamp?
        public var farLinksAt: Timestamp?
        public var isLive = true

        init(index: Int, host: MemoryHostID, node: Node, nat: NATBehaviour, startedAt: Timestamp) {
            self.index = index
            self.host = host
            self.node = node
            self.nat = nat
            self.startedAt = startedAt
        }
    }

    public let options: SimulationOptions
    public let scheduler = SimulationScheduler()
    public let network: MemoryNetwork
    public private(set) var nodes: [SimulatedNode] = []
    /// Addresses of live nodes, sorted: the true ring.
    private var ring: [Address] = []
    private var byAddress: [Address: SimulatedNode] = [:]
    private var random: SeededRandom
    private let overlords: OverlordRegistry
    private let overlordEntries: [NodeConfig.PluginEntry]
    private let logger: Logger
    private var delivered: [UInt64: Int] = [:]
    private var nextMessageID: UInt64 = 0
    private let farEstimator: FarOverlord

    public private(set) var churnLeft = 0
    public private(set) var churnJoined = 0

    public init(options: SimulationOptions, overlords extra: OverlordRegistry? = nil,
                overlordEntries: [NodeConfig.PluginEntry]? = nil) throws {
        try options.validate()
        self.options = options
        self.random = SeededRandom(seed: options.seed)
        self.network = MemoryNetwork(scheduler: scheduler, seed: options.seed ^ 0x5157_4E45_54,
                                     roundTrip: options.roundTrip, loss: options.loss)
        var registry = extra ?? OverlordRegistry()
        if extra == nil { PluginCatalog.registerOverlords(in: &registry) }
        self.overlords = registry
        let farSettings = try PluginSettings(yaml: options.farSettingsYAML.isEmpty ? "{}" : options.farSettingsYAML)
        let nearSettings = try PluginSettings(yaml: "per_side: \(options.nearPerSide)")
        self.overlordEntries = overlordEntries ?? [
            .init(name: LeafOverlord.name),
            .init(name: NearOverlord.name, settings: nearSettings),
            .init(name: FarOverlord.name, settings: farSettings),
            .init(name: ShortcutOverlord.name),
        ]
        self.farEstimator = FarOverlord(settings: try farSettings.decode(FarOverlord.Settings.self, for: FarOverlord.name))
        var logger = Logger(label: "wow.sim")
        logger.logLevel = ProcessInfo.processInfo.environment["WOW_SIM_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        self.logger = logger
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
        var transports = TransportRegistry()
        let network = self.network
        transports.register(scheme: MemoryTransport.scheme) { _, _ in network.makeListener(host: host) }
        transports.register(scheme: MemoryTransport.streamScheme) { _, _ in network.makeStreamListener(host: host) }
        transports.register(RelayTransport.self)
        let drawn = random.address()
        let security = try credentials(forNode: nodes.count, near: address)
        var config = NodeConfig(name: "sim-\(nodes.count)", address: security == nil ? address ?? drawn : nil,
                                transports: Self.transports(for: nat), overlords: overlordEntries,
                                bootstrap: bootstrapNode.map { $0.node.info.uris } ?? [])
        config.sharedNeighboursPerSide = max(options.nearPerSide + 1, 3)
        if let security { config.security = .secured(security) }
        let node = Node(config: config, scheduler: scheduler, random: random.split(), transports: transports,
                        overlords: overlords, logger: logger)
        let scheduler = self.scheduler
        node.wallClock = { OverlaySimulation.epoch + scheduler.now.nanoseconds / 1_000_000_000 }
        let simulated = SimulatedNode(index: nodes.count, host: host, node: node, nat: nat, startedAt: scheduler.now)
        node.onTableChange = { [weak self] _ in self?.observe(simulated) }
        node.onDeliver = { [weak self] header, payload in self?.recordDelivery(header, payload) }
        nodes.append(simulated)
        byAddress[node.address] = simulated
        insertIntoRing(node.address)
        do {
            try node.start()
        } catch {
            throw SimulationError.setup("node \(simulated.index): \(error)")
        }
        observe(simulated)
        return simulated
    }

    /// The wall-clock time (seconds since 1970) at virtual time zero.
    public static let epoch: Int64 = 1_790_000_000

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
        var secured = NodeConfig.Secured(credentials: try authority.member(
            name: "sim-\(index)", identity: identity, notBefore: OverlaySimulation.epoch - 3600,
            notAfter: notAfter ?? OverlaySimulation.epoch + 10 * 365 * 86400, serial: UInt64(index)))
        secured.channel.deterministicKeys = true
        return secured
    }

    /// What a node behind `nat` runs, as an operator would configure it: UDP (`memory`) unless UDP is
    /// blocked; a stream transport (`memory-stream`, think TLS on 443) on public hosts, which accept it, and
    /// on UDP-blocked ones, which have nothing else; and `relay` last, for peers nothing direct reaches.
    static func transports(for nat: NATBehaviour) -> [NodeConfig.PluginEntry] {
        switch nat {
        case .open:
            return [.init(name: MemoryTransport.scheme), .init(name: MemoryTransport.streamScheme), .init(name: RelayTransport.scheme)]
        case .udpBlocked:
            return [.init(name: MemoryTransport.streamScheme), .init(name: RelayTransport.scheme)]
        case .fullCone, .restricted, .portRestricted, .symmetric:
            return [.init(name: MemoryTransport.scheme), .init(name: RelayTransport.scheme)]
        }
    }

    /// Whether hosts behind these two NATs can reach each other with some direct transport in this model: UDP
    /// hole punching where the NATs allow it, or a stream to an open host.
    public static func canConnectDirectly(_ a: NATBehaviour, _ b: NATBehaviour) -> Bool {
        if a == .open || b == .open { return true }
        if a == .udpBlocked || b == .udpBlocked { return false }
        if a == .fullCone || b == .fullCone { return true }
        switch (a, b) {
        case (.symmetric, .symmetric), (.symmetric, .portRestricted), (.portRestricted, .symmetric): return false
        default: return true
        }
    }

    /// Connections of live nodes, each counted once: how many are direct, how many relayed, and how many of
    /// those relayed ones join two nodes that could have connected directly.
    public func connectionKinds() -> (direct: Int, relayed: Int, needlessRelays: Int) {
        var direct = 0
        var relayed = 0
        var needless = 0
        for n in liveNodes {
            for c in n.node.table.connections where n.node.address < c.address {
                guard c.transport == RelayTransport.scheme else { direct += 1; continue }
                relayed += 1
                if let peer = byAddress[c.address], Self.canConnectDirectly(n.nat, peer.nat) { needless += 1 }
            }
        }
        return (direct, relayed, needless)
    }

    /// Crashes a node: its host goes silent and its process state is gone (no goodbye).
    public func crash(_ simulated: SimulatedNode) {
        guard simulated.isLive else { return }
        simulated.isLive = false
        network.setDown(simulated.host, true)
        simulated.node.stop(graceful: false)
        removeFromRing(simulated.node.address)
    }

    private func drawNAT() -> NATBehaviour {
        var draw = random.unit()
        for behaviour in NATBehaviour.allCases where behaviour != .open {
            let share = options.natMix[behaviour] ?? 0
            if draw < share { return behaviour }
            draw -= share
        }
        return .open
    }

    private func insertIntoRing(_ address: Address) {
        ring.insert(address, at: ringIndex(of: address))
    }

    private func removeFromRing(_ address: Address) {
        let index = ringIndex(of: address)
        if index < ring.count && ring[index] == address { ring.remove(at: index) }
    }

    private func ringIndex(of address: Address) -> Int {
        var low = 0
        var high = ring.count
        while low < high {
            let mid = (low + high) / 2
            if ring[mid] < address { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The true left and right neighbours of a live node, among the live nodes.
    public func trueNeighbours(of address: Address) -> (left: Address, right: Address)? {
        guard ring.count >= 2 else { return nil }
        let index = ringIndex(of: address)
        return (ring[(index + 1) % ring.count], ring[(index - 1 + ring.count) % ring.count])
    }

    /// Whether the node holds structured connections to both its true neighbours.
    public func isRoutable(_ simulated: SimulatedNode) -> Bool {
        guard let (left, right) = trueNeighbours(of: simulated.node.address) else { return true }
        let table = simulated.node.table
        return table.connection(to: left)?.isStructured == true && table.connection(to: right)?.isStructured == true
    }

    private func observe(_ simulated: SimulatedNode) {
        guard simulated.isLive else { return }
        if simulated.routableAt == nil, isRoutable(simulated) { simulated.routableAt = scheduler.now }
        if simulated.farLinksAt == nil, simulated.routableAt != nil, hasFarLinks(simulated) { simulated.farLinksAt = scheduler.now }
    }

    private func hasFarLinks(_ simulated: SimulatedNode) -> Bool {
        let table = simulated.node.table
        // The node's own estimate decides how many far links it wants; a ring too small for any counts as done.
        guard let size = FarOverlord.estimateSize(table, perSide: 2) else { return false }
        let far = table.connections.filter { $0.localTypes.contains(farEstimator.connectionType) }.count
        return far >= max(farEstimator.targetCount(size: size), ring.count > 8 ? 1 : 0)
    }

    // MARK: - Measuring

    /// How many live nodes lack a structured connection to a true neighbour.
    public func ringViolations() -> Int {
        liveNodes.filter { !isRoutable($0) }.count
    }

    /// Sends `count` exact-mode messages between random live pairs and runs until all arrive or `timeout`.
    public func measureRouting(count: Int, timeout: Duration = .seconds(30)) -> (sent: Int, delivered: Int, hops: [Int]) {
        let live = liveNodes
        guard live.count >= 2, count > 0 else { return (0, 0, []) }
        delivered.removeAll()
        var ids: [UInt64] = []
        for _ in 0..<count {
            let source = live[Int(random.next() % UInt64(live.count))]
            var destination = source
            while destination === source { destination = live[Int(random.next() % UInt64(live.count))] }
            nextMessageID += 1
            ids.append(nextMessageID)
            var payload = ByteBuffer()
            payload.writeInteger(nextMessageID)
            source.node.send(data: payload, to: destination.node.address)
        }
        let deadline = scheduler.now + timeout
        scheduler.run(until: deadline) { delivered.count < count }
        let hops = ids.compactMap { delivered[$0] }
        return (count, hops.count, hops)
    }

    /// Starts `count` flows between random live pairs that are not directly connected, 10 packets a second
    /// each way, and runs until each pair holds a `structured.shortcut` connection or `timeout` passes.
    /// Returns the seconds from the flows' first packets to each shortcut (flows that got one).
    public func measureShortcuts(flows count: Int, timeout: Duration = .seconds(10)) -> [Double] {
        let live = liveNodes.map(\.node)
        var pairs: [(Node, Node)] = []
        var used: Set<Address> = []
        for _ in 0..<(count * 50) where pairs.count < count && live.count >= 2 {
            let a = live[Int(random.next() % UInt64(live.count))]
            let b = live[Int(random.next() % UInt64(live.count))]
            guard a !== b, !a.table.contains(b.address), !used.contains(a.address), !used.contains(b.address) else { continue }
            used.formUnion([a.address, b.address])
            pairs.append((a, b))
        }
        let type: ConnectionType = "structured.shortcut"
        let start = scheduler.now
        var formed = [Timestamp?](repeating: nil, count: pairs.count)
        var step = 0
        while scheduler.now - start < timeout, formed.contains(where: { $0 == nil }) {
            if step % 10 == 0 {
                for (a, b) in pairs {
                    // Message id 0: not one `measureRouting` waits for.
                    a.send(data: ByteBuffer(integer: UInt64(0)), to: b.address)
                    b.send(data: ByteBuffer(integer: UInt64(0)), to: a.address)
                }
            }
            step += 1
            scheduler.run(for: .milliseconds(10))
            for (i, (a, b)) in pairs.enumerated() where formed[i] == nil
                && a.table.connection(to: b.address)?.types.contains(type) == true
                && b.table.connection(to: a.address)?.types.contains(type) == true {
                formed[i] = scheduler.now
            }
        }
        return formed.compactMap { $0.map { ($0 - start).seconds } }
    }

    private func recordDelivery(_ header: RoutedHeader, _ payload: ByteBuffer) {
        guard let id = payload.getInteger(at: payload.readerIndex, as: UInt64.self) else { return }
        delivered[id] = Int(header.hops)
    }

    public func check(phase: String, messages: Int) -> SimulationReport.Check {
        let violations = ringViolations()
        let result = measureRouting(count: messages)
        let live = liveNodes
        let connections = live.isEmpty ? 0 : Double(live.map { $0.node.table.count }.reduce(0, +)) / Double(live.count)
        var byType: [String: Double] = [:]
        for n in live {
            for c in n.node.table.connections {
                if c.localTypes.isEmpty { byType["none", default: 0] += 1 }
                for t in c.localTypes { byType[t.name, default: 0] += 1 }
            }
        }
        for key in byType.keys { byType[key]! /= Double(max(live.count, 1)) }
        let kinds = connectionKinds()
        let all = kinds.direct + kinds.relayed
        return SimulationReport.Check(
            phase: phase, at_virtual_s: scheduler.now.seconds, live_nodes: live.count,
            ring_consistent: violations == 0, ring_violations: violations,
            messages_sent: result.sent, messages_delivered: result.delivered,
            delivery_ratio: result.sent == 0 ? 1 : Double(result.delivered) / Double(result.sent),
            hops: Self.hopStats(result.hops), connections_per_node: connections, connections_by_local_type: byType,
            connections_direct: kinds.direct, connections_relayed: kinds.relayed,
            relayed_share: all == 0 ? 0 : Double(kinds.relayed) / Double(all), needless_relays: kinds.needlessRelays)
    }

    static func hopStats(_ hops: [Int]) -> SimulationReport.Hops {
        let sorted = hops.sorted()
        var histogram: [String: Int] = [:]
        for h in sorted { histogram[String(h), default: 0] += 1 }
        return SimulationReport.Hops(
            mean: sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count),
            p50: percentile(sorted.map(Double.init), 0.5), p99: percentile(sorted.map(Double.init), 0.99),
            max: sorted.last ?? 0, histogram: histogram)
    }

    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    static func percentiles(_ values: [Double]) -> SimulationReport.Percentiles {
        let sorted = values.sorted()
        return .init(p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99),
                     max: sorted.last ?? 0, count: sorted.count)
    }

    // MARK: - The whole run

    /// Joins every node, settles, measures; then churns and measures again if asked. `progress` gets a line
    /// now and then for humans.
    public func run(progress: ((String) -> Void)? = nil) throws -> SimulationReport {
        let wallStart = Date()
        // Join phase.
        for i in 0..<options.nodes {
            try addNode()
            if options.joinInterval > .zero { scheduler.run(for: options.joinInterval) }
            if let progress, (i + 1) % max(1, options.nodes / 10) == 0 {
                progress("joined \(i + 1)/\(options.nodes) nodes at t=\(String(format: "%.1f", scheduler.now.seconds))s virtual")
            }
        }
        scheduler.run(for: options.settle - .seconds(30))
        let bytesBefore = network.bytesDelivered
        let idleWindow = Duration.seconds(30)
        scheduler.run(for: idleWindow)
        let idleBytes = Double(network.bytesDelivered - bytesBefore)
        var checks = [check(phase: "after_join", messages: options.messages)]
        let connectionsAfterJoin = checks[0].connections_per_node
        let shortcuts = options.flows > 0 ? measureShortcuts(flows: options.flows) : nil
        if let shortcuts {
            progress?("flows: \(shortcuts.count)/\(options.flows) got a shortcut within 10 s")
        }
        progress?("after join: ring_consistent=\(checks[0].ring_consistent) delivery=\(checks[0].delivery_ratio) mean hops=\(String(format: "%.2f", checks[0].hops.mean))")

        // Churn phase.
        if options.churnPerMinute > 0 {
            let interval = Duration.nanoseconds(Int64(60e9 / options.churnPerMinute))
            let end = scheduler.now + options.churnDuration
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
        for n in nodes { nodeDrops.merge(n.node.stats.drops, uniquingKeysWith: +) }
        return SimulationReport(
            nodes: options.nodes, seed: options.seed,
            rtt_ms: [options.roundTrip.lowerBound.seconds * 1000, options.roundTrip.upperBound.seconds * 1000],
            loss: options.loss, ring_consistent: last.ring_consistent, delivery_ratio: last.delivery_ratio,
            join_routable_s: Self.percentiles(routable), join_far_s: Self.percentiles(far),
            hops: checks[0].hops, shortcut_s: shortcuts.map(Self.percentiles), flows: options.flows, checks: checks, churn_left: churnLeft, churn_joined: churnJoined,
            connections_per_node: last.connections_per_node,
            idle_bytes_per_s_per_connection: connectionsAfterJoin == 0 ? 0
                : idleBytes / idleWindow.seconds / (connections / 2 == 0 ? 1 : connections / 2),
            packets_sent: network.packetsSent, packets_dropped: network.drops, node_drops: nodeDrops,
            virtual_s: scheduler.now.seconds, events: scheduler.eventsRun,
            wall_s: Date().timeIntervalSince(wallStart))
    }

    private func writeCSV(to path: String) throws {
        var text = "index,address,nat,start_s,routable_s,far_s,live\n"
        for n in nodes {
            let routable = n.routableAt.map { String(format: "%.4f", ($0 - n.startedAt).seconds) } ?? ""
            let far = n.farLinksAt.map { String(format: "%.4f", ($0 - n.startedAt).seconds) } ?? ""
            text += "\(n.index),\(n.node.address.hex),\(n.nat.rawValue),\(String(format: "%.3f", n.startedAt.seconds)),\(routable),\(far),\(n.isLive)\n"
        }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw SimulationError.setup("cannot write CSV to \(path): \(error.localizedDescription)")
        }
    }
}
