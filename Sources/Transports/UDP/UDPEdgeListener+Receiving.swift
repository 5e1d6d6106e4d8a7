import NIOCore
import WOWKit

/// Receiving: reads from the socket, split into datagrams (UDP GRO), punch packets counted and dropped, data
/// datagrams unwrapped (and a lost one put back from its group's parity, `FECDecoder`), loss reports taken,
/// fragments put back together, and whole packets handed to the edge of their remote (made on the first).
extension UDPEdgeListener {
    /// A read from `source`, from the channel handler: one datagram, or with `segmentSize` (UDP GRO) several
    /// of that size back to back, the last possibly shorter.
    func receive(_ read: ByteBuffer, segmentSize: Int?, from source: SocketAddress) {
        // One lookup per read: the datagrams of a coalesced read all come from `source`.
        let edge = edges[source]
        guard let segmentSize, segmentSize > 0, read.readableBytes > segmentSize else {
            return receiveDatagram(read, from: source, edge: edge)
        }
        coalescedReads += 1
        var rest = read
        while let datagram = rest.readSlice(length: min(segmentSize, rest.readableBytes)), datagram.readableBytes > 0 {
            receiveDatagram(datagram, from: source, edge: edge)
        }
    }

    /// One datagram from `source`, whose edge was `edge` when the read arrived (nil: none yet).
    private func receiveDatagram(_ datagram: ByteBuffer, from source: SocketAddress, edge: UDPEdge?) {
        datagramsReceived += 1
        largestDatagramReceived = max(largestDatagramReceived, datagram.readableBytes)
        // A punch that outlived its TTL (same LAN, loopback): it carries nothing and makes no edge.
        if datagram.readableBytes == PunchPacket.size, PunchPacket.matches(datagram) {
            punchPacketsReceived += 1
            return
        }
        guard let kind = FECPacket.kind(of: datagram) else { return receiveBody(datagram, from: source, edge: edge) }
        let allocator = handler?.channel?.allocator ?? ByteBufferAllocator()
        switch kind {
        case FECPacket.dataKind:
            guard let header = FECPacket.DataHeader(of: datagram) else { return countDrop(.fecTruncated) }
            var body = datagram
            body.moveReaderIndex(forwardBy: FECPacket.dataHeaderSize)
            let recovered = edge?.decoder.receiveData(header, body: body, allocator: allocator)
            receiveBody(body, from: source, edge: edge)
            if let recovered { receiveRecovered(recovered, from: source, edge: edge) }
            if let edge, edge.decoder.mayReport, let report = edge.decoder.takeReport(now: .now()) {
                sendLossReport(report, to: source)
            }
        case FECPacket.parityKind:
            guard let header = FECPacket.ParityHeader(of: datagram) else { return countDrop(.fecTruncated) }
            parityReceived += 1
            var units = datagram
            units.moveReaderIndex(forwardBy: FECPacket.parityHeaderSize)
            if let recovered = edge?.decoder.receiveParity(header, units: units, allocator: allocator) {
                receiveRecovered(recovered, from: source, edge: edge)
            }
        default:
            guard let report = FECPacket.LossReport(of: datagram) else { return countDrop(.fecTruncated) }
            lossReportsReceived += 1
            guard let edge else { return }
            let groupSize = edge.policy.take(report)
            edge.encoder.groupSize = settings.fec.groupSize(chosen: groupSize)
        }
    }

    private func receiveRecovered(_ body: ByteBuffer, from source: SocketAddress, edge: UDPEdge?) {
        recoveredDatagrams += 1
        receiveBody(body, from: source, edge: edge)
    }

    /// The body of a data datagram (or a datagram without the data header): a fragment, or a whole packet.
    private func receiveBody(_ body: ByteBuffer, from source: SocketAddress, edge: UDPEdge?) {
        guard FragmentPacket.matches(body) else { return deliver(body, from: source, edge: edge) }
        if edge == nil, delegate?.admitsOnlyAuthenticatedStrangers == true, edges[source] == nil {
            // Nothing is kept for a stranger whose first packet must fit one datagram.
            return countDrop(.notAdmitted)
        }
        let allocator = handler?.channel?.allocator ?? ByteBufferAllocator()
        switch reassembler.receive(body, from: source, now: .now(), allocator: allocator) {
        case .complete(let packet):
            deliver(packet, from: source, edge: edge)
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

    /// A whole packet from `source`, for its edge (`edge` if still open; else the one made since, or a new one).
    private func deliver(_ packet: ByteBuffer, from source: SocketAddress, edge: UDPEdge?) {
        if let edge = edge.flatMap({ $0.isClosed ? nil : $0 }) ?? edges[source] {
            countReceived(packet)
            if !edge.isSteered { steer(edge) }
            edge.deliver(packet)
            return
        }
        guard isRunning, let delegate else { return }
        switch delegate.edgeListener(self, admit: packet, from: { IPEndpoint(source).udpURI }) {
        case .accept:
            break
        case .drop:
            return countDrop(.notAdmitted)
        case .reply(let answer):
            countDrop(.notAdmitted)
            return sendUnnumbered(answer, to: source)
        }
        countReceived(packet)
        guard let edge = edges.accept(from: source, make: {
            UDPEdge(listener: self, remote: source, localURI: primaryURI, remoteURI: IPEndpoint(source).udpURI,
                    isInbound: true)
        }) else { return }
        // A stranger that proved itself is a member: its next datagrams (a joiner's handshake) skip the
        // strangers' queue, where a flood would drop them as likely as its own. Else from its second packet.
        if delegate.admitsOnlyAuthenticatedStrangers { steer(edge) }
        delegate.edgeListener(self, didAccept: edge)
        edge.deliver(packet)
    }

    /// Datagrams the listener's socket takes per read call (`recvmmsg`; tests check it); nil without a socket.
    var readsPerCall: Int? {
        try? handler?.channel?.syncOptions?.getOption(.datagramVectorReadMessageCount)
    }

    private func countReceived(_ packet: ByteBuffer) {
        packetsReceived += 1
        bytesReceived += packet.readableBytes
    }
}
