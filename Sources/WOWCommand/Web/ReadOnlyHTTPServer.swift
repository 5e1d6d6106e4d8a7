import NIOCore
import NIOHTTP1
import NIOPosix

/// The one HTTP server of `wow`: what `wow run --metrics` scrapes and what `--web` views. It serves fixed
/// routes and nothing else, and is read-only by construction: every route answers `GET` (and `HEAD`), any
/// other method gets 405, an unknown path 404. Bound on a loopback address it also refuses requests whose
/// `Host` is not a loopback name (403), so a web page elsewhere cannot reach it by rebinding a DNS name to
/// 127.0.0.1.
///
/// Routes run on the event loop the server is bound on: bind it on a node's loop and a route reads the node
/// without a hop.
enum ReadOnlyHTTPServer {
    /// A fixed response, produced at each request.
    struct Document: Sendable {
        var contentType: String
        var body: [UInt8]
    }

    /// What a path answers.
    enum Route: Sendable {
        /// A whole response, computed at each request on the server's loop.
        case document(@Sendable () -> Document)
        /// A stream of server-sent events (`text/event-stream`) that lasts until the client goes away.
        case events(OverlayFeed)
    }

    /// Binds `address` on `loop` and serves `routes` (path to route) there until the channel is closed.
    static func bind(_ address: SocketAddress, on loop: any EventLoop, routes: [String: Route]) throws -> any Channel {
        let checksHost = address.isLoopback
        return try ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(routes: routes, checksHost: checksHost))
                }
            }
            .bind(to: address).wait()
    }

    /// Whether a `Host` header names this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`), with or
    /// without a port.
    static func isLoopbackHost(_ host: String) -> Bool {
        var name = Substring(host.lowercased())
        if name.hasPrefix("[") {
            name = name.dropFirst().prefix { $0 != "]" }
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        if name == "localhost" || name == "::1" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}

extension SocketAddress {
    /// Whether this is an IPv4 127.0.0.0/8 or the IPv6 ::1 address.
    var isLoopback: Bool {
        guard let ip = ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1"
    }
}

/// Answers each request of one HTTP connection from the routes.
private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: [String: ReadOnlyHTTPServer.Route]
    private let checksHost: Bool
    private var request: HTTPRequestHead?
    /// The event stream this connection carries, once it asked for one: it writes until the channel closes.
    private var stream: RepeatedTask?
    /// How far this connection's event stream has read the feed.
    private var cursor = OverlayFeed.Cursor()

    init(routes: [String: ReadOnlyHTTPServer.Route], checksHost: Bool) {
        self.routes = routes
        self.checksHost = checksHost
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): request = head
        case .body: break
        case .end:
            guard let head = request, stream == nil else { return }
            request = nil
            let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
            let isRead = head.method == .GET || head.method == .HEAD
            if checksHost, let host = head.headers.first(name: "Host"), !ReadOnlyHTTPServer.isLoopbackHost(host) {
                respond(context, head, status: .forbidden, type: "text/plain",
                        body: Array("Host '\(host)' is not a loopback name; this endpoint serves this machine only\n".utf8))
            } else if let route = routes[path] {
                if !isRead {
                    respond(context, head, status: .methodNotAllowed, type: "text/plain", body: Array("use GET\n".utf8),
                            extra: [("Allow", "GET, HEAD")])
                } else {
                    switch route {
                    case .document(let produce):
                        let document = produce()
                        respond(context, head, status: .ok, type: document.contentType, body: document.body,
                                omitBody: head.method == .HEAD)
                    case .events(let feed):
                        startStream(context, head, feed: feed)
                    }
                }
            } else {
                let known = routes.keys.sorted().joined(separator: ", ")
                respond(context, head, status: .notFound, type: "text/plain", body: Array("not found; try \(known)\n".utf8))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.cancel()
        stream = nil
        context.fireChannelInactive()
    }

    /// Server-sent events: everything the feed holds, then what it gains, every 200 ms.
    private func startStream(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, feed: OverlayFeed) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-store")
        Self.addSafetyHeaders(&headers)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))),
                      promise: nil)
        if request.method == .HEAD {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        stream = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(200)) { _ in
            let (handler, context) = bound.value
            guard context.channel.isActive else { return }
            let text = feed.serverSentEvents(after: &handler.cursor)
            guard !text.isEmpty else { return }
            context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        }
    }

    private static func addSafetyHeaders(_ headers: inout HTTPHeaders) {
        // Only this server's own files, no framing by other sites, no guessing of content types.
        headers.add(name: "Content-Security-Policy", value: "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus,
                         type: String, body: [UInt8], omitBody: Bool = false, extra: [(String, String)] = []) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        Self.addSafetyHeaders(&headers)
        for (name, value) in extra { headers.add(name: name, value: value) }
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
