#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import WOWKit

/// Sending: packets queued as data datagrams (`FECPacket`) or fragments in them, gathered into GSO writes
/// where the kernel has it, with each parity group's parity, and flushed once per loop tick; loss reports; and
/// hole punches with a small IP TTL.
extension UDPEdgeListener {
    /// Queues `packet` for `edge`'s remote, as one data datagram or as fragments; the flush comes once per
    /// loop tick. With GSO, datagrams of one size to one remote are gathered (`UDPSendBatch`) and leave as one
    /// write.
    func send(_ packet: ByteBuffer, on edge: UDPEdge) {
        let size = packet.readableBytes
        guard size <= UDPTransport.maximumPacketSize else { return countDrop(.oversized) }
        guard let handler, let channel = handler.channel else { return countDrop(.socketDown) }
        guard channel.isWritable else { return countDrop(.backpressure) }
        if UDPFragmenter.needsFragments(packet) {
            let count = UDPFragmenter.fragmentCount(forPacketSize: size)
            let messageID = nextMessageID
            nextMessageID &+= 1
            // The packet's bytes read once, each fragment (header and piece) written in one access: per
            // fragment, separate ByteBuffer calls cost more than copying the piece.
            packet.withUnsafeReadableBytes { bytes in
                for index in 0..<count {
                    emit(size: UDPFragmenter.fragmentSize(index, ofPacketSize: size), on: edge) { buffer in
                        UDPFragmenter.writeFragment(index, of: count, messageID: messageID, packet: bytes, into: &buffer)
                    }
                }
            }
            fragmentedPacketsSent += 1
        } else {
            emit(size: size, on: edge) { $0.writeImmutableBuffer(packet) }
        }
        packetsSent += 1
        bytesSent += size
        scheduleFlush()
    }

    /// Queues a data datagram with a body of `bodySize` bytes (written by `body`) for `edge`'s remote, and the
    /// parity of its group once the group is full; a group left open is closed by the flush.
    private func emit(size bodySize: Int, on edge: UDPEdge, body: (inout ByteBuffer) -> Void) {
        let size = FECPacket.dataHeaderSize + bodySize
        queue(size: size, to: edge.remote) { buffer in edge.encoder.writeData(into: &buffer, body: body) }
        datagramsSent += 1
        largestDatagramSent = max(largestDatagramSent, size)
        if edge.encoder.isGroupFull {
            emitParity(on: edge)
        } else if edge.encoder.groupCount == 1 {
            edgesWithOpenGroups.append(edge)
        }
    }

    /// Queues the parity of `edge`'s open group.
    private func emitParity(on edge: UDPEdge) {
        queue(size: edge.encoder.paritySize, to: edge.remote) { edge.encoder.writeParity(into: &$0) }
        paritySent += 1
    }

    /// Queues `datagram` for `remote` as it is, without a data header: an answer to a remote that has no edge
    /// (no numbering is kept for it).
    func sendUnnumbered(_ datagram: ByteBuffer, to remote: SocketAddress) {
        guard handler?.channel?.isWritable == true,
              datagram.readableBytes <= UDPTransport.maximumDatagramSize else { return }
        queue(size: datagram.readableBytes, to: remote) { $0.writeImmutableBuffer(datagram) }
        scheduleFlush()
    }

    /// Queues a loss report for `remote`.
    func sendLossReport(_ report: FECPacket.LossReport, to remote: SocketAddress) {
        guard handler?.channel?.isWritable == true else { return }
        queue(size: FECPacket.lossReportSize, to: remote) { report.write(into: &$0) }
        lossReportsSent += 1
        scheduleFlush()
    }

    /// Adds a datagram of `size` bytes for `remote` to the batch, writing out the batch first if it cannot
    /// join it.
    private func queue(size: Int, to remote: SocketAddress, write: (inout ByteBuffer) -> Void) {
        let limit = usesSegmentationOffload ? UDPSendBatch.maximumSegments : 1
        if !batch.add(size: size, to: remote, segmentLimit: limit, write: write) {
            writeBatch()
            _ = batch.add(size: size, to: remote, segmentLimit: limit, write: write)
        }
    }

    private func scheduleFlush() {
        guard !isFlushScheduled else { return }
        isFlushScheduled = true
        eventLoop.assumeIsolated().execute { [self] in
            isFlushScheduled = false
            flush()
        }
    }

    /// Hands the gathered datagrams to the channel: one GSO write, or one datagram.
    func writeBatch() {
        guard let (remote, data, segmentSize) = batch.take() else { return }
        guard let handler else { return countDrop(.socketDown) }
        if let segmentSize {
            handler.write(AddressedEnvelope(remoteAddress: remote, data: data,
                                            metadata: .init(ecnState: .transportNotCapable, packetInfo: nil,
                                                            segmentSize: segmentSize)))
            offloadWrites += 1
            hasWrittenWithOffload = true
        } else {
            handler.write(AddressedEnvelope(remoteAddress: remote, data: data))
        }
    }

    /// Sends everything queued: the parity of groups still open (so that the last datagrams of a burst are
    /// covered too), the gathered datagrams, then the channel's queue.
    private func flush() {
        for edge in edgesWithOpenGroups where !edge.isClosed && edge.encoder.hasOpenGroup {
            emitParity(on: edge)
        }
        edgesWithOpenGroups.removeAll(keepingCapacity: true)
        writeBatch()
        handler?.flush()
    }

    // MARK: Hole punching

    /// Sends `PunchPacket.countPerPunch` punch packets to `remote` with IP TTL `ttl` (see the type's contract).
    func punch(_ remote: SocketAddress, ttl: UInt8) {
        guard let handler, let channel = handler.channel, let options = channel.syncOptions else {
            return countDrop(.socketDown)
        }
        let option = UDPEdgeListener.ttlOption(toward: remote)
        let normalTTL: SocketOptionValue
        do {
            normalTTL = try normalTTLs[option.optionName.rawValue] ?? options.getOption(option)
            normalTTLs[option.optionName.rawValue] = normalTTL
            // What is queued leaves first, with the normal TTL.
            writeBatch()
            handler.flush()
            try options.setOption(option, value: SocketOptionValue(ttl))
        } catch {
            logger.debug("cannot set the udp socket's TTL; not punching", metadata: ["error": "\(error)"])
            return
        }
        let sent = eventLoop.makePromise(of: Void.self)
        for index in 0..<PunchPacket.countPerPunch {
            handler.write(AddressedEnvelope(remoteAddress: remote, data: PunchPacket.make()),
                          promise: index == PunchPacket.countPerPunch - 1 ? sent : nil)
        }
        handler.flush()
        punchPacketsSent += PunchPacket.countPerPunch
        sent.futureResult.assumeIsolated().whenComplete { [logger] _ in
            do {
                try channel.syncOptions?.setOption(option, value: normalTTL)
            } catch {
                // Only a closed socket refuses; the one bound again in its place has the default TTL.
                logger.debug("cannot restore the udp socket's TTL", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The socket's IP TTL toward IPv4 peers now (tests check that a punch restores it); nil without a socket.
    var ipv4TTL: Int? {
        let option = ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: IP_TTL))
        guard let options = handler?.channel?.syncOptions, let ttl = try? options.getOption(option) else { return nil }
        return Int(ttl)
    }

    /// IP_TTL for IPv4 peers (also as IPv4-mapped addresses on a dual-stack socket), IPV6_UNICAST_HOPS for IPv6.
    private static func ttlOption(toward remote: SocketAddress) -> ChannelOptions.Types.SocketOption {
        if case .v6 = remote, IPEndpoint(remote).unmappedIPv4 == nil {
            return ChannelOptions.Types.SocketOption(level: .ipv6, name: NIOBSDSocket.Option(rawValue: IPV6_UNICAST_HOPS))
        }
        return ChannelOptions.Types.SocketOption(level: .ip, name: NIOBSDSocket.Option(rawValue: IP_TTL))
    }
}
