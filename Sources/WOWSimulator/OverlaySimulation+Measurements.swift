import NIOCore
import Plugins
import WOWKit

/// What a run measures: the ring against the true one, routing of random messages, the time to shortcuts.
extension OverlaySimulation {
    /// How many live nodes lack a structured connection to a true neighbour.
    public func ringViolations() -> Int {
        liveNodes.filter { !isRoutable($0) }.count
    }

    /// Sends `count` exact-mode messages between random live pairs and runs until all arrive or `timeout`.
    public func measureRouting(count: Int, timeout: Duration = .seconds(30))
        -> (sent: Int, delivered: Int, hops: [Int], lost: [String]) {
        let live = liveNodes
        guard live.count >= 2, count > 0 else { return (0, 0, [], []) }
        delivered.removeAll()
        var ids: [UInt64] = []
        var pairs: [UInt64: String] = [:]
        for _ in 0..<count {
            let source = live[Int(random.next() % UInt64(live.count))]
            var destination = source
            while destination === source { destination = live[Int(random.next() % UInt64(live.count))] }
            nextMessageID += 1
            ids.append(nextMessageID)
            pairs[nextMessageID] = "\(source.node.address.short) -> \(destination.node.address.short)"
            var payload = ByteBuffer()
            payload.writeInteger(nextMessageID)
            source.node.send(data: payload, to: destination.node.address)
        }
        let deadline = scheduler.now + timeout
        scheduler.run(until: deadline) { delivered.count < count }
        let hops = ids.compactMap { delivered[$0] }
        let lost = ids.filter { delivered[$0] == nil }.prefix(10).compactMap { pairs[$0] }
        return (count, hops.count, hops, lost)
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
        let type = ConnectionType(stringLiteral: ShortcutOverlord.name)
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

    /// Starts `count` name lookups, one every 20 ms, each by a random live member for the name of a random live
    /// member it is not connected to (so the name service answers, not what the asker holds), and runs until
    /// every one ended. Returns the seconds each found lookup took, and how many found the right member.
    public func measureNameLookups(count: Int) -> (seconds: [Double], correct: Int) {
        let live = liveNodes.map(\.node)
        var seconds: [Double] = []
        var correct = 0
        var pending = 0
        for _ in 0..<(count * 50) where seconds.count + pending < count && live.count >= 2 {
            let asker = live[Int(random.next() % UInt64(live.count))]
            let wanted = live[Int(random.next() % UInt64(live.count))]
            guard asker !== wanted, !asker.table.contains(wanted.address),
                  let name = wanted.certificate(of: wanted.address)?.name else { continue }
            let start = scheduler.now
            pending += 1
            asker.lookUpName(name) { [self] result in
                pending -= 1
                guard case .success(let record?) = result else { return }
                seconds.append((scheduler.now - start).seconds)
                if record.address == wanted.address { correct += 1 }
            }
            scheduler.run(for: .milliseconds(20))
        }
        let deadline = scheduler.now + .seconds(10)
        scheduler.run(until: deadline) { pending > 0 }
        return (seconds, correct)
    }

    /// Notes the hops of a measured message (its payload starts with its id).
    func recordDelivery(_ header: RoutedHeader, _ payload: ByteBuffer) {
        guard let id = payload.getInteger(at: payload.readerIndex, as: UInt64.self) else { return }
        delivered[id] = Int(header.hops)
    }

    /// Measures the ring, routing (`messages` random messages) and the connections, now.
    public func check(phase: String, messages: Int) -> SimulationReport.Check {
        let violations = ringViolations()
        func drops() -> [String: Int] {
            liveNodes.reduce(into: [:]) { $0.merge($1.node.stats.drops.byName, uniquingKeysWith: +) }
        }
        let dropsBefore = drops()
        let result = measureRouting(count: messages)
        let dropsDuring = drops().merging(dropsBefore, uniquingKeysWith: -).filter { $0.value > 0 }
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
            hops: SimulationStatistics.hops(result.hops), connections_per_node: connections, connections_by_local_type: byType,
            connections_direct: kinds.direct, connections_relayed: kinds.relayed,
            relayed_share: all == 0 ? 0 : Double(kinds.relayed) / Double(all), needless_relays: kinds.needlessRelays,
            failovers: live.map(\.node.stats.failovers).reduce(0, +),
            path_probes: live.map(\.node.stats.pathProbes).reduce(0, +), drops_while_routing: dropsDuring,
            lost_messages: result.lost)
    }
}
