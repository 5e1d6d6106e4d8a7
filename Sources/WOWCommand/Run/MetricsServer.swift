import NIOCore
import NIOHTTP1
import NIOPosix
import WOWKit

/// The node's Prometheus endpoint: `GET /metrics` over HTTP/1.1 on a loopback address (`wow run --metrics`).
/// Bound on the node's own event loop, so a scrape reads the node without a hop.
enum MetricsServer {
    /// Binds `address` (which the caller has checked is loopback) and serves `metrics` for `node`.
    static func bind(_ address: SocketAddress, on loop: any EventLoop, node: NIOLoopBound<Node>,
                     metrics: NIOLoopBound<NodeMetrics>) throws -> any Channel {
        try ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(node: node, metrics: metrics))
                }
            }
            .bind(to: address).wait()
    }
}

/// Answers each request: the exposition text for `GET /metrics`, 404 or 405 otherwise.
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let node: NIOLoopBound<Node>
    private let metrics: NIOLoopBound<NodeMetrics>
    private var request: HTTPRequestHead?

    init(node: NIOLoopBound<Node>, metrics: NIOLoopBound<NodeMetrics>) {
        self.node = node
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            if path != "/metrics" {
                respond(context, head, status: .notFound, type: "text/plain", body: Array("not found; try /metrics\n".utf8))
            } else if head.method != .GET && head.method != .HEAD {
                respond(context, head, status: .methodNotAllowed, type: "text/plain", body: Array("use GET\n".utf8))
            } else {
                respond(context, head, status: .ok, type: "text/plain; version=0.0.4; charset=utf-8",
                        body: metrics.value.scrape(node.value), omitBody: head.method == .HEAD)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus,
                         type: String, body: [UInt8], omitBody: Bool = false) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
                      promise: nil)
        if !omitBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { [context] _ in context.close(promise: nil) } }
    }
}
