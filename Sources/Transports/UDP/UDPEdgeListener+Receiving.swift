import NIOCore
import WOWKit

/// Receiving: reads from the socket, split into datagrams (UDP GRO), punch packets counted and dropped,
/// fragments put back together, and whole packets handed to the edge of their remote (made on the first).
extension UDPEdgeListener {
    /// A read from `source`, from the channel handler: one datagram, or with `segmentSize` (UDP GRO) several
    /// of that size back to back, the last possibly shorter.
    func receive(_ read: ByteBuffer, segmentSize: Int?, from source: SocketAddress) {
        guard let segmentSize, segmentSize > 0, read.readableBytes > segmentSize else {
            return receiveDatagram(read, from: source)
        }
        coalescedReads += 1
        var rest = read
        while let datagram = rest.readSlice(length: min(segmentSize, rest.readableBytes)), datagram.readableBytes > 0 {
            receiveDatagram(datagram, from: source)
        }
    }

    private func receiveDatagram(_ datagram: ByteBuffer, from source: SocketAddress) {
        datagramsReceived += 1
        largestDatagramReceived = max(largestDatagramReceived, datagram.readableBytes)
        // A punch that outlived its TTL (same LAN, loopback): it carries nothing and makes no edge.
        if datagram.readableBytes == PunchPacket.size, PunchPacket.matches(datagram) {
            punchPacketsReceived += 1
            return
        }
        guard FragmentPacket.matches(datagram) else { return deliver(datagram, from: source) }
        let allocator = handler?.channel?.allocator ?? ByteBufferAllocator()
        switch reassembler.receive(datagram, from: source, now: .now(), allocator: allocator) {
        case .complete(let packet):
            deliver(packet, from: source)
        case .pending:
            scheduleReassemblySweep()
        case .dropped:
            break
        }
    }

    /// Discards timed-out messages while any are in progress, so their memory and counts do not wait for traffic.
    private func scheduleReassemblySweep() {
        guard !isSweepScheduled else { return }
        isSweepScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: reassembler.limits.timeout) { [self] in
            isSweepScheduled = false
            reassembler.expire(now: .now())
            if reassembler.messageCount > 0 && !isStopped { scheduleReassemblySweep() }
        }
    }

    /// A whole packet from `source`, for its edge.
    private func deliver(_ packet: ByteBuffer, from source: SocketAddress) {
        packetsReceived += 1
        bytesReceived += packet.readableBytes
        if let edge = edges[source] {
            edge.deliver(packet)
            return
        }
        guard isRunning, let delegate, let edge = edges.accept(from: source, make: {
            UDPEdge(listener: self, remote: source, localURI: primaryURI, remoteURI: IPEndpoint(source).udpURI,
                    isInbound: true)
        }) else { return }
        delegate.edgeListener(self, didAccept: edge)
        edge.deliver(packet)
    }
}
