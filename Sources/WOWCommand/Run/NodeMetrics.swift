import Prometheus
import WOWKit

/// A node's metrics in Prometheus form (swift-prometheus): connections by type and transport, packets and bytes
/// in and out, drops by reason, link attempts and failures, routed packets, link latency and route hops
/// (docs/operations.md lists every series).
///
/// Counters and gauges are read from the node's own counters (`NodeStats`, the connection table) when a
/// scrape asks, so the packet path pays nothing for them; the two histograms are fed as events happen
/// (`NodeObserver`). Used on the node's event loop; the Prometheus types themselves are thread-safe.
final class NodeMetrics: NodeObserver {
    let registry = PrometheusCollectorRegistry()
    private let linkLatency: DurationHistogram
    private let routeHops: ValueHistogram
    /// Counters already published, so a scrape adds only what happened since the last one.
    private var published: [String: Int] = [:]
    private var counters: [String: Counter] = [:]
    private var gauges: [String: Gauge] = [:]

    init() {
        linkLatency = registry.makeDurationHistogram(
            name: "wow_link_latency_seconds",
            buckets: [.milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                      .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)],
            help: "Time from starting a link attempt to the connection (secure handshake and link handshake)")
        routeHops = registry.makeValueHistogram(
            name: "wow_route_hops", buckets: [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32],
            help: "Overlay hops of application data delivered to this node")
    }

    func linkEstablished(after latency: Duration, transport: String) { linkLatency.record(latency) }

    func delivered(hops: UInt8) { routeHops.record(Double(hops)) }

    /// Brings every counter and gauge up to date with `node` (on its loop) and renders the exposition text.
    func scrape(_ node: Node) -> [UInt8] {
        let stats = node.stats
        // One help text per metric name, whatever its labels (Prometheus requires it).
        count("wow_packets_total", ["direction": "in"], stats.packetsIn, help: "Packets on edges, by direction")
        count("wow_packets_total", ["direction": "out"], stats.packetsOut, help: "Packets on edges, by direction")
        count("wow_bytes_total", ["direction": "in"], stats.bytesIn, help: "Bytes on edges, by direction")
        count("wow_bytes_total", ["direction": "out"], stats.bytesOut, help: "Bytes on edges, by direction")
        count("wow_link_attempts_total", [:], stats.linkAttempts, help: "Link attempts started")
        count("wow_link_failures_total", [:], stats.linkFailures, help: "Link attempts that failed")
        count("wow_routed_forwarded_total", [:], stats.routedForwarded, help: "Routed packets forwarded for others")
        count("wow_routed_delivered_total", [:], stats.routedDelivered, help: "Routed packets delivered to this node")
        for (reason, total) in stats.drops.byName {
            count("wow_drops_total", ["reason": reason], total, help: "Packets dropped, by reason")
        }
        for (transport, drops) in node.transportDrops {
            for (reason, total) in drops {
                count("wow_transport_drops_total", ["transport": transport, "reason": reason], total,
                      help: "Datagrams, fragments and connections a transport dropped, by transport and reason")
            }
        }
        var connections: [String: Int] = [:]
        for connection in node.table.connections {
            let types = connection.types.isEmpty ? ["none"] : connection.types.map(\.name)
            for type in types { connections["\(type)|\(connection.transport)", default: 0] += 1 }
        }
        // Series seen before and now empty go to zero rather than vanish.
        for key in gauges.keys where key.hasPrefix("wow_connections|") {
            if connections[String(key.dropFirst("wow_connections|".count))] == nil { gauges[key]?.set(to: 0) }
        }
        for (key, value) in connections {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            gauge("wow_connections", ["type": parts[0], "transport": parts[1]], Double(value),
                  help: "Connections, by type (one connection counts under each of its types) and transport")
        }
        gauge("wow_connections_total", [:], Double(node.table.count), help: "Connections")
        gauge("wow_ring_member", [:], node.isRingMember ? 1 : 0, help: "1 once the node is part of a ring")
        if let vnet = node.virtualInterface?.network.stats {
            let packets = "IP packets through the TUN device, by direction (out: read from it, in: written to it)"
            let bytes = "IP bytes through the TUN device, by direction"
            count("wow_vnet_packets_total", ["direction": "out"], vnet.packetsFromDevice, help: packets)
            count("wow_vnet_packets_total", ["direction": "in"], vnet.packetsToDevice, help: packets)
            count("wow_vnet_bytes_total", ["direction": "out"], vnet.bytesFromDevice, help: bytes)
            count("wow_vnet_bytes_total", ["direction": "in"], vnet.bytesToDevice, help: bytes)
            count("wow_vnet_icmp_sent_total", [:], vnet.icmpSent, help: "ICMP errors written to the TUN device")
            let superSegments = "TCP super-segments (above the MTU, segmentation offload) through the TUN device, by direction"
            count("wow_vnet_super_segments_total", ["direction": "out"], vnet.superSegmentsFromDevice, help: superSegments)
            count("wow_vnet_super_segments_total", ["direction": "in"], vnet.superSegmentsToDevice, help: superSegments)
        }
        return registry.emitToBuffer()
    }

    private func key(_ name: String, _ labels: [String: String]) -> String {
        ([name] + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "|")
    }

    private func count(_ name: String, _ labels: [String: String], _ total: Int, help: String) {
        let key = key(name, labels)
        let counter = counters[key] ?? registry.makeCounter(name: name, labels: labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                                            help: help)
        counters[key] = counter
        let delta = total - published[key, default: 0]
        if delta > 0 { counter.increment(by: Int64(delta)) }
        published[key] = total
    }

    private func gauge(_ name: String, _ labels: [String: String], _ value: Double, help: String) {
        let key = name == "wow_connections" ? "wow_connections|\(labels["type"]!)|\(labels["transport"]!)" : key(name, labels)
        let gauge = gauges[key] ?? registry.makeGauge(name: name, labels: labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, help: help)
        gauges[key] = gauge
        gauge.set(to: value)
    }
}
