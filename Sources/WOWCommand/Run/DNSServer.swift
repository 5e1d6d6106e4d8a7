import NIOCore
import NIOPosix
import WOWKit

/// The node's resolver for member names (`wow run --dns`): a UDP DNS server on a loopback address that answers
/// `NAME.<domain>` with the virtual IPs in that member's certificate, found through the name service
/// (docs/operations.md, "Names"). It runs on the node's own event loop; `DNSResponder` decides every answer.
enum DNSServer {
    static func bind(_ address: SocketAddress, on loop: any EventLoop, node: NIOLoopBound<Node>,
                     responder: DNSResponder) throws -> any Channel {
        try DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSHandler(node: node, responder: responder))
                }
            }
            .bind(to: address).wait()
    }
}

/// Answers each query datagram: at once from `DNSResponder`, or after the node looked the name up.
private final class DNSHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let node: NIOLoopBound<Node>
    private let responder: DNSResponder
    /// Lookups waiting for the name service: more are answered SERVFAIL at once rather than queued.
    private var waiting = 0
    static let maximumWaiting = 256

    init(node: NIOLoopBound<Node>, responder: DNSResponder) {
        self.node = node
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        switch responder.answer(envelope.data) {
        case .drop(let reason):
            node.value.logger.debug("dns query dropped", metadata: ["reason": "\(reason.reason)"])
        case .reply(let bytes):
            send(bytes, to: envelope.remoteAddress, context)
        case .lookup(let name, let query):
            guard waiting < Self.maximumWaiting else {
                return send(responder.serverFailure(to: query), to: envelope.remoteAddress, context)
            }
            waiting += 1
            node.value.lookUpName(name) { [self] result in
                waiting -= 1
                let reply: ByteBuffer
                switch result {
                case .success(let record?): reply = responder.reply(to: query, addresses: record.certificate.virtualIPs.map(DNSAddress.init))
                case .success(nil): reply = responder.reply(to: query, addresses: nil)
                case .failure: reply = responder.serverFailure(to: query)
                }
                send(reply, to: envelope.remoteAddress, context)
            }
        }
    }

    private func send(_ bytes: ByteBuffer, to address: SocketAddress, _ context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: address, data: bytes)), promise: nil)
    }
}
