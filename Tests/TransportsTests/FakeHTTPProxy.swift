import Foundation
import NIOCore
import NIOPosix

/// An HTTP proxy for tests, on 127.0.0.1 with an ephemeral port: it reads a `CONNECT` request's header,
/// records it, and then does what `behaviour` says (open the tunnel, refuse, answer garbage, close, say
/// nothing). A tunnel is a TCP connection to the requested target with bytes copied both ways.
///
/// Confined to one event loop (the test's): make it with `start(on:behaviour:)` from the test thread, read
/// and change it on the loop. `stop()` closes the listening socket (tunnels close with their ends).
final class FakeHTTPProxy {
    enum Behaviour {
        /// Answer 200 and open the tunnel.
        case tunnel
        /// Open the tunnel, and send `greeting` in the same write as the 200 answer (as if the peer had spoken
        /// at once).
        case tunnelWithGreeting([UInt8])
        /// Open the tunnel only for a request with `Proxy-Authorization: <value>`; else 407 and close.
        case requireAuthorization(String)
        /// Send these bytes, then close.
        case answer(String)
        /// Close without a word.
        case closeAtOnce
        /// Read the request and never answer.
        case silent
    }

    var behaviour: Behaviour
    /// The request headers received, as text (without the blank line).
    private(set) var requests: [String] = []
    private(set) var port = 0
    private var server: (any Channel)?

    private init(behaviour: Behaviour) {
        self.behaviour = behaviour
    }

    /// Starts a proxy on `loop`; call from the test thread (it waits for the bind).
    static func start(on loop: any EventLoop, behaviour: Behaviour) throws -> NIOLoopBound<FakeHTTPProxy> {
        let proxy = try loop.submit { NIOLoopBound(FakeHTTPProxy(behaviour: behaviour), eventLoop: loop) }.wait()
        let server = try ServerBootstrap(group: loop)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeProxyConnection(proxy: proxy))
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
        try loop.submit {
            proxy.value.server = server
            proxy.value.port = server.localAddress?.port ?? 0
        }.wait()
        return proxy
    }

    func record(_ request: String) { requests.append(request) }

    func stop() {
        server?.close(promise: nil)
        server = nil
    }
}

/// One client connection of the fake proxy.
private final class FakeProxyConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let proxy: NIOLoopBound<FakeHTTPProxy>
    private var header: [UInt8] = []
    private var isHeaderDone = false
    private var tunnel: (any Channel)?
    /// Bytes the client sent after its header, before the tunnel was up.
    private var early: [UInt8] = []

    init(proxy: NIOLoopBound<FakeHTTPProxy>) { self.proxy = proxy }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if let tunnel {
            tunnel.writeAndFlush(bytes, promise: nil)
            return
        }
        guard !isHeaderDone else {
            early += bytes.readBytes(length: bytes.readableBytes) ?? []
            return
        }
        while let byte = bytes.readInteger(as: UInt8.self) {
            header.append(byte)
            if header.suffix(4).elementsEqual("\r\n\r\n".utf8) {
                isHeaderDone = true
                early = bytes.readBytes(length: bytes.readableBytes) ?? []
                respond(context: context, request: String(decoding: header.dropLast(4), as: UTF8.self))
                return
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tunnel?.close(promise: nil)
        context.fireChannelInactive()
    }

    private func respond(context: ChannelHandlerContext, request: String) {
        let proxy = self.proxy.value
        proxy.record(request)
        let lines = request.components(separatedBy: "\r\n")
        let words = lines.first?.split(separator: " ") ?? []
        switch proxy.behaviour {
        case .tunnel:
            openTunnel(context: context, words: words, greeting: [])
        case .tunnelWithGreeting(let greeting):
            openTunnel(context: context, words: words, greeting: greeting)
        case .requireAuthorization(let expected):
            if lines.contains("Proxy-Authorization: \(expected)") {
                openTunnel(context: context, words: words, greeting: [])
            } else {
                answerAndClose(context: context, "HTTP/1.1 407 Proxy Authentication Required\r\n"
                               + "Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            }
        case .answer(let text):
            answerAndClose(context: context, text)
        case .closeAtOnce:
            context.close(promise: nil)
        case .silent:
            break
        }
    }

    private func answerAndClose(context: ChannelHandlerContext, _ text: String) {
        let channel = context.channel
        channel.writeAndFlush(channel.allocator.buffer(string: text)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func openTunnel(context: ChannelHandlerContext, words: [Substring], greeting: [UInt8]) {
        let client = context.channel
        guard words.count == 3, words[0] == "CONNECT", let colon = words[1].lastIndex(of: ":"),
              let port = Int(words[1][words[1].index(after: colon)...])
        else { return answerAndClose(context: context, "HTTP/1.1 400 Bad Request\r\n\r\n") }
        let host = String(words[1][..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        ClientBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FakeProxySplice(partner: client))
                }
            }
            .connect(host: host, port: port)
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let target):
                    tunnel = target
                    var answer = client.allocator.buffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")
                    answer.writeBytes(greeting)
                    client.writeAndFlush(answer, promise: nil)
                    if !early.isEmpty { target.writeAndFlush(target.allocator.buffer(bytes: early), promise: nil) }
                    early = []
                case .failure:
                    answerAndClose(context: context, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
                }
            }
    }
}

/// The target side of a tunnel: copies what the target sends to the client, and closes the client with it.
private final class FakeProxySplice: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let partner: any Channel

    init(partner: any Channel) { self.partner = partner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner.writeAndFlush(Self.unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }
}
