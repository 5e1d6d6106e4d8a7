import Foundation
import Logging
import NIOCore
import WOWKit
import XCTest

@testable import WOWCommand

/// `wow run --metrics`: a node's Prometheus endpoint, scraped over real HTTP while two nodes talk.
final class MetricsEndpointTests: XCTestCase {
    private func config(_ name: String, bootstrap: [TransportURI]) throws -> NodeConfig {
        var config = NodeConfig(name: name, transports: [.init(name: "udp", settings: try PluginSettings(yaml: "listen: 127.0.0.1:0"))],
                                overlords: [.init(name: "leaf"), .init(name: "structured.near")], bootstrap: bootstrap)
        config.security = .insecure
        return config
    }

    /// GET `path` from `address` with a plain socket; returns the status line and the body.
    private func get(_ path: String, from address: SocketAddress) throws -> (status: String, body: String) {
        let text = try LoopbackSocket.exchange("GET \(path) HTTP/1.0\r\nHost: localhost\r\n\r\n", port: try XCTUnwrap(address.port))
        let parts = text.components(separatedBy: "\r\n\r\n")
        return (parts[0].components(separatedBy: "\r\n")[0], parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// The value of the sample line starting with `series` (name and labels as rendered), if any.
    private func sample(_ series: String, in body: String) -> Double? {
        body.split(separator: "\n").first { $0.hasPrefix(series + " ") }
            .flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    func testTheEndpointServesConnectionTrafficDropAndLatencyMetrics() throws {
        var logger = Logger(label: "wow.test")
        logger.logLevel = .critical
        let registries = WOW.registries()
        let first = try NodeRuntime.start(config: try config("alpha", bootstrap: []), transports: registries.transports,
                                          overlords: registries.overlords, controlPath: nil, logger: logger,
                                          metricsAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
        defer { first.shutdown() }
        let uris = try first.status().uris.compactMap { try? TransportURI($0) }
        let second = try NodeRuntime.start(config: try config("beta", bootstrap: uris), transports: registries.transports,
                                           overlords: registries.overlords, controlPath: nil, logger: logger,
                                           metricsAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
        defer { second.shutdown() }
        let deadline = Date().addingTimeInterval(10)
        while try second.status().connections.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let alpha = try first.withNode { $0.address }
        for _ in 0..<3 { try second.withNode { $0.send(data: ByteBuffer(string: "hi"), to: alpha) } }
        Thread.sleep(forTimeInterval: 0.3)

        let address = try XCTUnwrap(second.metricsAddress)
        let (status, body) = try get("/metrics", from: address)
        XCTAssertEqual(status, "HTTP/1.0 200 OK")
        for help in ["wow_connections", "wow_packets_total", "wow_bytes_total", "wow_link_attempts_total",
                     "wow_link_failures_total", "wow_link_latency_seconds", "wow_route_hops"] {
            XCTAssertTrue(body.contains("# TYPE \(help) "), "no \(help) in\n\(body)")
        }
        XCTAssertGreaterThanOrEqual(sample(#"wow_connections{transport="udp",type="leaf"}"#, in: body) ?? 0, 1, body)
        XCTAssertGreaterThan(sample(#"wow_packets_total{direction="out"}"#, in: body) ?? 0, 0, body)
        let scraped = try get("/metrics", from: try XCTUnwrap(first.metricsAddress)).body
        // An attempt records its latency when the peer's reply arrives: beta's leaf attempt, or, when alpha's
        // request answering beta's Connect-To-Mes reaches beta first and beta's attempt yields to it (1 run in
        // ~10 on a loaded machine), alpha's. Wait for either.
        func latencies() throws -> Double {
            try [address, XCTUnwrap(first.metricsAddress)].map {
                sample("wow_link_latency_seconds_count", in: try get("/metrics", from: $0).body) ?? 0
            }.reduce(0, +)
        }
        var completed = try latencies()
        let replyDeadline = Date().addingTimeInterval(10)
        while completed < 1 && Date() < replyDeadline {
            Thread.sleep(forTimeInterval: 0.1)
            completed = try latencies()
        }
        XCTAssertGreaterThanOrEqual(completed, 1, "no link attempt of alpha or beta completed\n\(body)")
        XCTAssertEqual(sample("wow_route_hops_count", in: scraped), 3, "alpha received three messages\n\(scraped)")

        // Counters only grow between scrapes; other paths are refused.
        let again = try get("/metrics", from: address).body
        XCTAssertGreaterThanOrEqual(sample(#"wow_packets_total{direction="out"}"#, in: again) ?? 0,
                                    sample(#"wow_packets_total{direction="out"}"#, in: body) ?? 0)
        XCTAssertEqual(try get("/", from: address).status, "HTTP/1.0 404 Not Found")
    }

    /// What a transport drops before the node sees it (here a tcp connection sending an empty frame) shows in
    /// `wow status` (JSON and text) and in the metrics, under the transport's name.
    func testTransportDropsShowInStatusAndMetrics() throws {
        var logger = Logger(label: "wow.test")
        logger.logLevel = .critical
        let registries = WOW.registries()
        var config = try config("alpha", bootstrap: [])
        config.transports = [.init(name: "tcp", settings: try PluginSettings(yaml: "listen: 127.0.0.1:0"))]
        let node = try NodeRuntime.start(config: config, transports: registries.transports,
                                         overlords: registries.overlords, controlPath: nil, logger: logger,
                                         metricsAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0))
        defer { node.shutdown() }
        XCTAssertEqual(try node.status().transport_drops, [:], "nothing dropped yet")
        let uri = try TransportURI(try XCTUnwrap(try node.status().uris.first { $0.hasPrefix("tcp://") }))
        let port = try XCTUnwrap(uri.hostAndPort?.port)

        let socket = try LoopbackSocket(port: port)
        socket.send([0x00, 0x00])

        let deadline = Date().addingTimeInterval(10)
        while try node.status().transport_drops.isEmpty && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let status = try node.status()
        XCTAssertEqual(status.transport_drops, ["tcp": ["empty_frame": 1]])
        XCTAssertTrue(StatusCommand.render(status).contains("tcp drops: empty_frame=1"), StatusCommand.render(status))
        let body = try get("/metrics", from: try XCTUnwrap(node.metricsAddress)).body
        XCTAssertEqual(sample(#"wow_transport_drops_total{reason="empty_frame",transport="tcp"}"#, in: body), 1, body)
    }

    func testMetricsMustListenOnLoopback() throws {
        for bad in ["0.0.0.0:9464", "198.18.0.1:9464", "127.0.0.1", "127.0.0.1:70000"] {
            XCTAssertThrowsError(try RunCommand.parse(["--config", "x.yml", "--metrics", bad]), bad) { error in
                let message = RunCommand.message(for: error)
                XCTAssertTrue(message.contains("--metrics"), message)
            }
        }
        XCTAssertNoThrow(try RunCommand.parse(["--config", "x.yml", "--metrics", "127.0.0.1:9464"]))
    }
}
