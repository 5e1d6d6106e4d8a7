import Foundation
import NIOCore
import Plugins
import WOWKit
import WOWSimulator

/// The local demo: N secured nodes in this process over real udp, tcp and tls sockets on loopback
/// (`LocalOverlay`); they join one by one, then two nodes that are not directly connected exchange traffic until
/// a `structured.shortcut` connection joins them, then random pairs exchange pings through the overlay.
///
/// Driven from the calling thread, which polls the overlay's loop; the nodes themselves run on that loop.
public final class LocalDemo {
    /// What to run.
    public struct Options: Sendable {
        public var nodes = 16
        public var messages = 100
        public var joinInterval: Duration = .milliseconds(100)
        /// Seconds allowed for the ring to become consistent, again for the answers to the messages, and for
        /// the shortcut to form.
        public var timeout = 30.0
        public init() {}
    }

    /// The transports a node listens on, chosen by its index so that all three carry connections and any two
    /// nodes share one: nodes that speak all three (node 0, the first bootstrap, is one), udp and tcp, tcp
    /// and tls, udp and tls. A node advertises first the URIs peers saw it at, so two nodes that both speak
    /// udp link over udp; tcp and tls carry the pairs that share nothing else.
    public static func transports(forNode index: Int) -> [String] {
        switch index % 4 {
        case 0: return ["tls", "tcp", "udp"]
        case 1: return ["udp", "tcp"]
        case 2: return ["tcp", "tls"]
        default: return ["udp", "tls"]
        }
    }

    public let options: Options
    /// The nodes started so far, as the run sees them (kept when a run fails half way).
    private var summaries: [DemoReport.NodeSummary] = []
    /// Pings sent, their round trips (ms) and the hops of pings and answers, so far.
    private var sent = 0
    private var rtts: [Double] = []
    private var hops: [Int] = []
    /// The shortcut step, once it ran.
    private var shortcut: DemoReport.ShortcutStep?
    private let progress: ((String) -> Void)?
    /// Called with the overlay once it exists (before any node starts), and again when the run is over, just
    /// before the overlay shuts down: what `wow demo --web` uses to watch it, and to keep it up for the viewer.
    public var overlayStarted: ((LocalOverlay) -> Void)?
    public var overlayFinishing: ((LocalOverlay) -> Void)?

    public init(options: Options, progress: ((String) -> Void)? = nil) {
        self.options = options
        self.progress = progress
    }

    /// A failure of the run, with its reason.
    struct Failure: Error { var reason: String }

    /// What the nodes see of the pings, confined to the overlay's loop.
    private final class Ledger {
        var sentAt: [UInt32: NIODeadline] = [:]
        var rttNanoseconds: [UInt32: Int64] = [:]
        var hops: [Int] = []
    }

    private static let ping: UInt8 = 1
    private static let pong: UInt8 = 2

    /// Runs the demo. Never throws: a failure is in the report (`ok`, `failure`).
    public func run() -> DemoReport {
        let wallStart = NIODeadline.now()
        var ringFormed: Double?
        var connections = (count: 0, byTransport: [String: Int](), byType: [String: Int]())
        var failure: String?

        let overlay: LocalOverlay
        do {
            overlay = try LocalOverlay()
        } catch {
            return report(summaries, ringFormed, 0, [], [], connections, "cannot start the event loop: \(error)", wallStart)
        }
        overlayStarted?(overlay)
        defer {
            overlayFinishing?(overlay)
            overlay.shutdown()
        }
        do {
            try join(overlay, start: wallStart)
            ringFormed = seconds(since: wallStart)
            progress?(String(format: "ring consistent: %d nodes in %.2f s", options.nodes, ringFormed ?? 0))
            try settle(overlay)
            // The shortcut first: once random pairs have talked, every pair that did holds a shortcut of its own
            // and, with 16 nodes, no pair is left unconnected for this step.
            try formShortcut(overlay)
            try exchangePings(overlay)
        } catch let error as Failure {
            failure = error.reason
        } catch {
            failure = "\(error)"
        }
        connections = (try? Self.countConnections(overlay)) ?? connections
        let drops = (try? overlay.inspect { nodes, _ in
            nodes.reduce(into: [String: Int]()) { all, node in all.merge(node.stats.drops.byName, uniquingKeysWith: +) }
        }) ?? [:]
        var result = report(summaries, ringFormed, sent, rtts, hops, connections, failure, wallStart)
        result.node_drops = drops
        result.shortcut = shortcut
        return result
    }

    // MARK: - Joining

    /// Starts the nodes one per `joinInterval`, each through a random node already started, and waits for a
    /// consistent ring; reports each node as it becomes routable.
    private func join(_ overlay: LocalOverlay, start: NIODeadline) throws {
        var startedAt: [NIODeadline] = []
        var routableAt: [Double?] = []
        var transports: [[String]] = []
        var nextStart = start
        var random = SystemRandomNumberGenerator()
        while true {
            let now = NIODeadline.now()
            if startedAt.count < options.nodes, now >= nextStart {
                let index = startedAt.count
                let schemes = Self.transports(forNode: index)
                var bootstrap: [TransportURI] = []
                if index > 0 {
                    let through = Int.random(in: 0..<index, using: &random)
                    bootstrap = try overlay.uris(through).filter { $0.text.contains("127.0.0.1") }
                }
                do {
                    try overlay.addNode(name: "n\(index)", transports: schemes.map { ($0, "listen: 127.0.0.1:0") },
                                        bootstrap: bootstrap)
                } catch {
                    throw Failure(reason: "cannot start node n\(index) (\(schemes.joined(separator: "+")) on 127.0.0.1): \(error)")
                }
                startedAt.append(NIODeadline.now())
                routableAt.append(nil)
                transports.append(schemes)
                nextStart = nextStart + TimeAmount.nanoseconds(options.joinInterval.nanoseconds)
            }
            let (members, routable, addresses) = try Self.observe(overlay)
            let observedAt = NIODeadline.now()
            for index in routable.indices where routable[index] && routableAt[index] == nil {
                let after = Double((observedAt - startedAt[index]).nanoseconds) / 1e9
                routableAt[index] = after
                let name = "n\(index)".padding(toLength: 5, withPad: " ", startingAt: 0)
                let schemes = transports[index].joined(separator: "+").padding(toLength: 12, withPad: " ", startingAt: 0)
                progress?(String(format: "  %6.2f s  ", seconds(since: start)) + name + schemes
                          + String(format: "routable %.3f s after its start   joined %d/%d, routable %d/%d", after,
                                   members.filter { $0 }.count, options.nodes, routableAt.compactMap { $0 }.count, options.nodes))
            }
            summaries = startedAt.indices.map {
                .init(name: "n\($0)", address: addresses[$0], transports: transports[$0], routable_s: routableAt[$0])
            }
            if startedAt.count == options.nodes, routable.allSatisfy({ $0 }) { return }
            if seconds(since: start) > options.timeout {
                let missing = routable.indices.filter { !routable[$0] }.map { "n\($0)" }
                throw Failure(reason: String(format: "the ring was not consistent within %.0f s (--timeout): %d of %d started nodes lack a connection to a true neighbour",
                                             options.timeout, missing.count, startedAt.count)
                              + " (\(missing.prefix(8).joined(separator: ", ")))")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// For every node started: whether it is a ring member, and whether it is connected (structured) to its
    /// true left and right neighbours among the nodes started.
    private static func observe(_ overlay: LocalOverlay) throws -> (members: [Bool], routable: [Bool], addresses: [String]) {
        try overlay.inspect { nodes, _ in
            let ring = nodes.indices.sorted { nodes[$0].address < nodes[$1].address }
            var routable = [Bool](repeating: nodes.count == 1, count: nodes.count)
            if ring.count > 1 {
                for (position, index) in ring.enumerated() {
                    let left = nodes[ring[(position + 1) % ring.count]].address
                    let right = nodes[ring[(position - 1 + ring.count) % ring.count]].address
                    let table = nodes[index].table
                    routable[index] = table.connection(to: left)?.isStructured == true
                        && table.connection(to: right)?.isStructured == true
                }
            }
            return (nodes.map(\.isRingMember), routable, nodes.map(\.address.hex))
        }
    }

    // MARK: - Pings

    /// Sends `messages` pings between random pairs, 10 ms apart; each destination answers from its
    /// `onDeliver`. Returns how many were sent, the round trips (ms) and the hop counts of both directions.
    private func exchangePings(_ overlay: LocalOverlay) throws {
        guard options.messages > 0 else { return }
        let loop = overlay.loop
        let ledger = try loop.submit { NIOLoopBound(Ledger(), eventLoop: loop) }.wait()
        try overlay.inspect { nodes, _ in
            for node in nodes {
                node.onDeliver = { [unowned node] header, payload in
                    var payload = payload
                    guard let kind = payload.readInteger(as: UInt8.self), let id = payload.readInteger(as: UInt32.self) else { return }
                    if kind == Self.ping {
                        var answer = ByteBuffer()
                        answer.writeInteger(Self.pong)
                        answer.writeInteger(id)
                        answer.writeInteger(header.hops)
                        node.send(data: answer, to: header.source)
                    } else if kind == Self.pong, let hopsThere = payload.readInteger(as: UInt8.self),
                              let sentAt = ledger.value.sentAt[id], ledger.value.rttNanoseconds[id] == nil {
                        ledger.value.rttNanoseconds[id] = (NIODeadline.now() - sentAt).nanoseconds
                        ledger.value.hops.append(Int(hopsThere))
                        ledger.value.hops.append(Int(header.hops))
                    }
                }
            }
        }
        var random = SystemRandomNumberGenerator()
        var pairs: [(from: Int, to: Int)] = []
        for _ in 0..<options.messages {
            let from = Int.random(in: 0..<options.nodes, using: &random)
            var to = Int.random(in: 0..<(options.nodes - 1), using: &random)
            if to >= from { to += 1 }
            pairs.append((from, to))
        }
        for (id, pair) in pairs.enumerated() {
            try overlay.inspect { nodes, _ in
                var ping = ByteBuffer()
                ping.writeInteger(Self.ping)
                ping.writeInteger(UInt32(id))
                ledger.value.sentAt[UInt32(id)] = NIODeadline.now()
                nodes[pair.from].send(data: ping, to: nodes[pair.to].address)
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        progress?("sent \(pairs.count) pings between random pairs; waiting for the answers")
        let waitStart = NIODeadline.now()
        while try loop.submit({ ledger.value.rttNanoseconds.count }).wait() < pairs.count, seconds(since: waitStart) < options.timeout {
            Thread.sleep(forTimeInterval: 0.01)
        }
        let (answered, hops) = try loop.submit { (ledger.value.rttNanoseconds, ledger.value.hops) }.wait()
        (sent, rtts, self.hops) = (pairs.count, answered.values.map { Double($0) / 1e6 }, hops)
        let lost = pairs.indices.filter { answered[UInt32($0)] == nil }
        if !lost.isEmpty {
            let examples = lost.prefix(5).map { "n\(pairs[$0].from) -> n\(pairs[$0].to)" }.joined(separator: ", ")
            throw Failure(reason: String(format: "%d of %d pings got no answer within %.0f s (--timeout): ",
                                         lost.count, pairs.count, options.timeout) + examples)
        }
    }

    // MARK: - Shortcut

    /// What the shortcut pair sees, confined to the overlay's loop.
    private final class FlowLedger {
        var firstSentAt: NIODeadline?
        var formedAt: NIODeadline?
        /// Hops of each flow packet delivered, and whether it was sent after the shortcut formed.
        var hops: [(hops: Int, afterShortcut: Bool)] = []
    }

    private static let flow: UInt8 = 3
    private static let shortcutType = ConnectionType(stringLiteral: ShortcutOverlord.name)

    /// Picks two nodes that are not directly connected and has them exchange 10 packets a second each way
    /// until both hold a `structured.shortcut` connection (at most `timeout`), then 10 more each way, which
    /// must take one hop. Skipped (no failure) when every pair is directly connected already.
    private func formShortcut(_ overlay: LocalOverlay) throws {
        let loop = overlay.loop
        let ledger = try loop.submit { NIOLoopBound(FlowLedger(), eventLoop: loop) }.wait()
        func unconnectedPairs() throws -> [(Int, Int)] {
            try overlay.inspect { nodes, live in
                nodes.indices.flatMap { a in
                    nodes.indices.filter { b in
                        a < b && live[a] && live[b] && !nodes[a].table.contains(nodes[b].address)
                            && !nodes[b].table.contains(nodes[a].address)
                    }.map { (a, $0) }
                }
            }
        }
        var unconnected = try unconnectedPairs()
        // Each node keeps its `per_side + trim_slack` nearest on either side and a far link: with more nodes than
        // that covers, a full mesh is the joins' surplus near links (kept `trim_grace_s`, 20 s), not lasting.
        let near = NearOverlord.Settings()
        if unconnected.isEmpty && options.nodes > 2 * (near.perSide + near.trimSlack) + 2 {
            // Wait for the overlords to trim one.
            progress?("every pair of nodes is directly connected; waiting for surplus links to be trimmed")
            let start = NIODeadline.now()
            while unconnected.isEmpty && seconds(since: start) < options.timeout {
                Thread.sleep(forTimeInterval: 0.25)
                unconnected = try unconnectedPairs()
            }
        }
        guard !unconnected.isEmpty else {
            progress?("shortcut step skipped: every pair of nodes stayed directly connected for " + String(format: "%g s", options.timeout))
            return
        }
        var random = SystemRandomNumberGenerator()
        let (a, b) = unconnected[Int.random(in: 0..<unconnected.count, using: &random)]
        let names = ["n\(a)", "n\(b)"]
        progress?("\(names[0]) and \(names[1]) (not directly connected) exchange 10 packets a second each way")
        try overlay.inspect { nodes, _ in
            let pair = [nodes[a], nodes[b]]
            for node in pair {
                let other = pair[0] === node ? pair[1] : pair[0]
                let previous = node.onDeliver
                node.onDeliver = { header, payload in
                    guard payload.getInteger(at: payload.readerIndex, as: UInt8.self) == Self.flow,
                          let after = payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) else {
                        previous?(header, payload)
                        return
                    }
                    ledger.value.hops.append((Int(header.hops), after == 1))
                }
                node.onTableChange = { [unowned node, unowned other] _ in
                    guard ledger.value.formedAt == nil,
                          node.table.connection(to: other.address)?.types.contains(Self.shortcutType) == true,
                          other.table.connection(to: node.address)?.types.contains(Self.shortcutType) == true else { return }
                    ledger.value.formedAt = NIODeadline.now()
                }
            }
        }
        func send(afterShortcut: Bool) throws {
            try overlay.inspect { nodes, _ in
                if ledger.value.firstSentAt == nil { ledger.value.firstSentAt = NIODeadline.now() }
                let marker: UInt8 = afterShortcut ? 1 : 0
                nodes[a].send(data: ByteBuffer(bytes: [Self.flow, marker]), to: nodes[b].address)
                nodes[b].send(data: ByteBuffer(bytes: [Self.flow, marker]), to: nodes[a].address)
            }
        }
        let start = NIODeadline.now()
        while try loop.submit({ ledger.value.formedAt }).wait() == nil, seconds(since: start) < options.timeout {
            try send(afterShortcut: false)
            Thread.sleep(forTimeInterval: 0.1)
        }
        let (first, formed) = try loop.submit { (ledger.value.firstSentAt, ledger.value.formedAt) }.wait()
        let formedAfter = first.flatMap { first in formed.map { Double(($0 - first).nanoseconds) / 1e9 } }
        func step() throws -> DemoReport.ShortcutStep {
            let hops = try loop.submit { ledger.value.hops }.wait()
            return .init(pair: names, formed_s: formedAfter,
                         hops_before: SimulationStatistics.hops(hops.filter { !$0.afterShortcut }.map(\.hops)),
                         hops_after: SimulationStatistics.hops(hops.filter(\.afterShortcut).map(\.hops)))
        }
        guard let formedAfter else {
            shortcut = try step()
            throw Failure(reason: "no structured.shortcut connection between \(names[0]) and \(names[1]) within "
                          + String(format: "%.0f s of their first packet (--timeout)", options.timeout))
        }
        progress?("shortcut \(names[0]) <-> \(names[1]) formed " + String(format: "%.3f s after the first packet", formedAfter))
        for _ in 0..<10 {
            try send(afterShortcut: true)
            Thread.sleep(forTimeInterval: 0.1)
        }
        let waitStart = NIODeadline.now()
        while try loop.submit({ ledger.value.hops.filter(\.afterShortcut).count }).wait() < 20, seconds(since: waitStart) < 2 {
            Thread.sleep(forTimeInterval: 0.01)
        }
        let result = try step()
        shortcut = result
        if result.hops_after.histogram.isEmpty {
            throw Failure(reason: "none of the packets \(names[0]) and \(names[1]) sent over their shortcut arrived")
        }
        if result.hops_after.max > 1 {
            let held = try overlay.inspect { nodes, _ in
                [(nodes[a], nodes[b]), (nodes[b], nodes[a])].map { node, other in
                    node.table.connection(to: other.address).map { "\($0.types.map(\.name).sorted())" } ?? "none"
                }
            }
            throw Failure(reason: "packets between \(names[0]) and \(names[1]) still took up to \(result.hops_after.max) hops after "
                          + "their shortcut formed (connection types now: \(names[0]) \(held[0]), \(names[1]) \(held[1]))")
        }
    }

    /// Waits until no connection table has changed for a second (the far links and trims that follow the
    /// joins are done), at most `timeout`.
    private func settle(_ overlay: LocalOverlay) throws {
        let start = NIODeadline.now()
        var last = try Self.tableSignature(overlay)
        var quietSince = NIODeadline.now()
        while seconds(since: quietSince) < 1, seconds(since: start) < options.timeout {
            Thread.sleep(forTimeInterval: 0.05)
            let now = try Self.tableSignature(overlay)
            if now != last {
                last = now
                quietSince = NIODeadline.now()
            }
        }
    }

    /// Every node's connections: peer, types and edge.
    private static func tableSignature(_ overlay: LocalOverlay) throws -> [String] {
        try overlay.inspect { nodes, _ in
            nodes.map { node in
                node.table.connections.map { "\($0.address.hex)/\($0.types.map(\.name).sorted())/\($0.edgeID)" }.joined(separator: ",")
            }
        }
    }

    // MARK: - Summary

    /// Connections between the nodes, each counted once, by transport and by type.
    private static func countConnections(_ overlay: LocalOverlay) throws -> (count: Int, byTransport: [String: Int], byType: [String: Int]) {
        try overlay.inspect { nodes, live in
            var count = 0
            var byTransport: [String: Int] = [:]
            var byType: [String: Int] = [:]
            for (index, node) in nodes.enumerated() where live[index] {
                for connection in node.table.connections where node.address < connection.address {
                    count += 1
                    byTransport[connection.transport, default: 0] += 1
                    for type in connection.types { byType[type.name, default: 0] += 1 }
                }
            }
            return (count, byTransport, byType)
        }
    }

    private func report(_ summaries: [DemoReport.NodeSummary], _ ringFormed: Double?, _ sent: Int, _ rtts: [Double], _ hops: [Int],
                        _ connections: (count: Int, byTransport: [String: Int], byType: [String: Int]), _ failure: String?,
                        _ wallStart: NIODeadline) -> DemoReport {
        DemoReport(
            nodes: options.nodes, ok: failure == nil, failure: failure, ring_consistent: ringFormed != nil,
            ring_formed_s: ringFormed, join_routable_s: SimulationStatistics.percentiles(summaries.compactMap(\.routable_s)),
            messages_sent: sent, messages_delivered: rtts.count, hops: SimulationStatistics.hops(hops),
            rtt_ms: SimulationStatistics.percentiles(rtts), connections: connections.count,
            connections_by_transport: connections.byTransport, connections_by_type: connections.byType,
            node_drops: [:], node_list: summaries, wall_s: seconds(since: wallStart))
    }

    private func seconds(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1e9
    }
}
