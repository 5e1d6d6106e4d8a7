import NIOCore

/// The first handler of an outbound stream connection dialed through an HTTP proxy: it asks the proxy to
/// `CONNECT` to the peer and lets the connection through only once the proxy has opened the tunnel.
///
/// - It withholds `channelActive` from the handlers after it (the TLS handler would otherwise start its
///   handshake with the proxy, and `TCPConnectionHandler` would call a plain `tcp` edge up) and sends the
///   request instead.
/// - On a 2xx answer it passes `channelActive` on, then any bytes that came after the answer's header, and
///   removes itself: from then on the connection is the peer's.
/// - On any other status, an answer that is not HTTP, or a close before the answer, it fires an
///   `HTTPProxyError` naming the proxy, the target and (for a refusal) the status, and closes the connection;
///   `TCPConnectionHandler` makes that error the reason the edge is unreachable.
///
/// A close asked for from our side before the answer (the attempt's deadline passed, the listener stopped)
/// is not reported as the proxy's doing.
///
/// How long the proxy may take is the edge attempt's deadline (`connect_timeout_ms`), which covers the
/// connection to the proxy, its answer and the TLS handshake. Runs on the connection's event loop.
final class HTTPConnectHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Not connected to the proxy yet.
        case connecting
        /// The request is sent; the answer is being read.
        case awaitingAnswer
        /// The tunnel is open (this handler is being removed).
        case established
        /// The proxy refused, the answer was bad, or our side closed the connection first: it is closing.
        case failed
    }

    private let proxy: HTTPProxy
    private let target: IPEndpoint
    private var parser = HTTPConnectResponseParser()
    private var state = State.connecting

    init(proxy: HTTPProxy, target: IPEndpoint) {
        self.proxy = proxy
        self.target = target
    }

    func channelActive(context: ChannelHandlerContext) {
        // Not passed on (see the type's comment): the tunnel is not open yet.
        guard case .connecting = state else { return }
        state = .awaitingAnswer
        let request = context.channel.allocator.buffer(string: proxy.connectRequest(to: target))
        context.writeAndFlush(Self.wrapOutboundOut(request), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .awaitingAnswer = state else {
            // Established: bytes read in the same loop tick as the answer, before the removal took effect.
            if case .established = state { context.fireChannelRead(data) }
            return
        }
        var bytes = Self.unwrapInboundIn(data)
        let answer: HTTPConnectResponseParser.Answer
        do {
            guard let complete = try parser.parse(&bytes) else { return }
            answer = complete
        } catch {
            return fail(context: context, .badAnswer(proxy: proxy.description, target: target.description,
                                                     reason: error.description))
        }
        guard answer.isSuccess else {
            return fail(context: context, .refused(proxy: proxy.description, target: target.description,
                                                  status: answer.status, reason: answer.reason))
        }
        state = .established
        context.fireChannelActive()
        if bytes.readableBytes > 0 { context.fireChannelRead(Self.wrapInboundOut(bytes)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .awaitingAnswer = state {
            state = .failed
            // A refusal whose status line arrived is still a refusal, even if the proxy closed mid-header.
            let error: HTTPProxyError = parser.statusSoFar.map { answer in
                answer.isSuccess
                    ? .closedBeforeAnswer(proxy: proxy.description, target: target.description)
                    : .refused(proxy: proxy.description, target: target.description, status: answer.status, reason: answer.reason)
            } ?? .closedBeforeAnswer(proxy: proxy.description, target: target.description)
            context.fireErrorCaught(error)
        }
        context.fireChannelInactive()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if case .awaitingAnswer = state { state = .failed }
        context.close(mode: mode, promise: promise)
    }

    private func fail(context: ChannelHandlerContext, _ error: HTTPProxyError) {
        state = .failed
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }
}
