import NIOCore
import WOWKit

/// The node's Prometheus endpoint: `GET /metrics` over HTTP/1.1 on a loopback address (`wow run --metrics`),
/// served by the `ReadOnlyHTTPServer` on the node's own event loop, so a scrape reads the node without a hop.
enum MetricsServer {
    /// Binds `address` (which the caller has checked is loopback) and serves `metrics` for `node`.
    static func bind(_ address: SocketAddress, on loop: any EventLoop, node: NIOLoopBound<Node>,
                     metrics: NIOLoopBound<NodeMetrics>) throws -> any Channel {
        try ReadOnlyHTTPServer.bind(address, on: loop, routes: [
            "/metrics": .document {
                .init(contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.value.scrape(node.value))
            },
        ])
    }
}
