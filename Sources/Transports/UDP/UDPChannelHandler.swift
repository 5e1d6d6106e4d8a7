import NIOCore
import WOWKit

/// The one handler in a `UDPEdgeListener`'s channel: hands each inbound datagram to the listener, and writes
/// the listener's datagrams from its context (the cheapest way into the pipeline).
///
/// Lives on the listener's event loop, like the listener. It holds the listener weakly, so a listener
/// dropped without `stop` is not kept alive by its own socket.
final class UDPChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    weak var listener: UDPEdgeListener?
    private(set) var context: ChannelHandlerContext?
    /// The error that closed or troubled the channel most recently, for the log.
    private(set) var lastError: (any Error)?

    /// Whether this is the port's strangers' socket (`SocketFilter`): what it reads is counted apart, and its
    /// reads pause beyond their budget while members' traffic flows (`StrangerReadBudget`).
    var isStrangerSocket = false
    /// Datagrams of the current batch of reads (strangers' socket only).
    private var batchCount = 0

    init(listener: UDPEdgeListener) { self.listener = listener }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    var channel: (any Channel)? { context?.channel }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if isStrangerSocket {
            batchCount += 1
            listener?.strangerDatagrams += 1
        }
        listener?.receive(envelope.data, segmentSize: envelope.metadata?.segmentSize, from: envelope.remoteAddress)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Nothing to do on one socket for all, or with the budget off (one clock read a batch otherwise).
        guard let listener, listener.isSteering, listener.strangerBudget.perSecond > 0 else { return }
        let now = UDPChannelHandler.now()
        guard isStrangerSocket else { return listener.strangerBudget.membersRead(at: now) }
        guard batchCount > 0 else { return }
        defer { batchCount = 0 }
        guard let pause = listener.strangerBudget.strangersRead(batchCount, at: now),
              let options = context.channel.syncOptions else { return }
        // Meanwhile the kernel queues strangers' datagrams (and drops what overflows its queue).
        listener.strangerReadPauses += 1
        try? options.setOption(.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(pause.nanoseconds)) { [weak self] in
            try? self?.context?.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    private static func now() -> Timestamp { Timestamp(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds)) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Datagram channels report non-fatal socket errors (e.g. ECONNREFUSED from an earlier send) here and
        // stay open; the listener counts them.
        lastError = error
        listener?.socketReportedError(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        listener?.channelDidClose(self, error: lastError)
        context.fireChannelInactive()
    }

    /// Queues one datagram; `flush` sends what is queued. `promise` completes once it was handed to the socket.
    func write(_ envelope: AddressedEnvelope<ByteBuffer>, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(envelope), promise: promise)
    }

    func flush() {
        context?.flush()
    }
}
