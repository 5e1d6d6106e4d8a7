import NIOCore
import NIOSSL
import NIOTLS
import WOWKit

/// The last handler of every `tcp`/`tls` connection's pipeline (after the TLS handler, if any, and the
/// `TCPFrameDecoder`): it turns the connection into a `TCPEdge` once the connection is up, hands it the
/// decoded packets, and tells it when the connection ends.
///
/// "Up" means connected for `tcp`, and the TLS handshake completed for `tls` (nothing of a peer that fails the
/// handshake reaches the node). An inbound connection that is up is announced by the listener's `didAccept`;
/// an outbound one completes its `TCPOutboundAttempt`. Any error (a framing violation, a TLS failure, a reset)
/// closes the connection; the listener counts it. Runs on the listener's event loop, like everything of it.
final class TCPConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Who opened the connection.
    enum Role {
        /// A peer connected to our listening socket.
        case inbound
        /// We connected, for this `createEdge`.
        case outbound(TCPOutboundAttempt)
    }

    private let listener: TCPEdgeListener
    private let role: Role
    /// Whether the connection is up only after a TLS handshake (the `tls` transport).
    private let waitsForHandshake: Bool
    /// The edge, once the connection is up.
    private var edge: TCPEdge?
    /// The first error seen, for the reason of a failed attempt.
    private var firstError: (any Error)?
    /// The deadline of an inbound TLS handshake.
    private var handshakeTimeout: Scheduled<Void>?

    init(listener: TCPEdgeListener, role: Role, waitsForHandshake: Bool) {
        self.listener = listener
        self.role = role
        self.waitsForHandshake = waitsForHandshake
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if !waitsForHandshake {
            becomeReady(context: context)
        } else if case .inbound = role {
            // A peer that connects and never finishes the handshake must not hold a socket for ever.
            let channel = context.channel
            let timeout = listener.connectTimeout
            handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                guard edge == nil else { return }
                firstError = firstError ?? ChannelError.connectTimeout(timeout)
                channel.close(promise: nil)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        if waitsForHandshake, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            becomeReady(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let packet = Self.unwrapInboundIn(data)
        guard let edge else { return listener.countDrop(.beforeReady) }
        edge.deliver(packet)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if firstError == nil { firstError = error }
        listener.connectionReported(error, wasUp: edge != nil)
        // The last handler: nothing after it wants the error. The connection is of no use any more.
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        if let edge {
            edge.connectionDidClose()
        } else {
            switch role {
            case .inbound:
                listener.inboundConnectionDidEnd(context.channel)
            case .outbound(let attempt):
                var reason = firstError.map { TCPOutboundAttempt.describe($0, timeout: listener.connectTimeout) }
                    ?? "the connection closed before it was up"
                // A proxy's own errors name it already; anything else (a reset, a TLS failure) says the way.
                if let proxy = attempt.proxy, !(firstError is HTTPProxyError) { reason += " (through proxy \(proxy))" }
                listener.fail(attempt, reason: reason)
            }
        }
        context.fireChannelInactive()
    }

    private func becomeReady(context: ChannelHandlerContext) {
        guard edge == nil else { return }
        handshakeTimeout?.cancel()
        handshakeTimeout = nil
        let channel = context.channel
        let localURI = channel.localAddress.flatMap { IPEndpoint($0).uri(scheme: listener.scheme) } ?? listener.primaryURI
        switch role {
        case .inbound:
            guard listener.isRunning, let remote = channel.remoteAddress,
                  let remoteURI = IPEndpoint(remote).uri(scheme: listener.scheme)
            else {
                listener.inboundConnectionDidEnd(channel)
                context.close(promise: nil)
                return
            }
            let edge = TCPEdge(listener: listener, channel: channel, localURI: localURI, remoteURI: remoteURI, isInbound: true)
            self.edge = edge
            listener.accept(edge)
        case .outbound(let attempt):
            guard listener.isRunning, attempt.isPending else {
                context.close(promise: nil)
                return
            }
            let edge = TCPEdge(listener: listener, channel: channel, localURI: localURI, remoteURI: attempt.uri, isInbound: false)
            self.edge = edge
            listener.connected(attempt, edge: edge)
        }
    }
}
