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

/// Sending: packets queued as datagrams or fragments (gathered into GSO writes where the kernel has it) and
/// flushed once per loop tick, and hole punches with a small IP TTL.
extension UDPEdgeListener {
    /// Queues `packet` for `remote`, as one datagram or as fragments; the flush comes once per loop tick.
    /// With GSO, datagrams of one size to one remote are gathered (`UDPSendBatch`) and leave as one write.
    func send(_ packet: ByteBuffer, to remote: SocketAddress) {
        let size = packet.readableBytes
        guard size <= UDPTransport.maximumPacketSize else { return countDrop(.oversized) }
        guard let handler, let channel = handler.channel else { return countDrop(.socketDown) }
        guard channel.isWritable else { return countDrop(.backpressure) }
        if UDPFragmenter.needsFragments(packet) {
            writeBatch()
            sendFragments(of: packet, to: remote, handler: handler, allocator: channel.allocator)
        } else {
            if usesSegmentationOffload {
                if !batch.add(packet, to: remote) {
                    writeBatch()
                    _ = batch.add(packet, to: remote)
                }
            } else {
                handler.write(AddressedEnvelope(remoteAddress: remote, data: packet))
            }
            datagramsSent += 1
            largestDatagramSent = max(largestDatagramSent, size)
        }
        packetsSent += 1
        bytesSent += size
        if !isFlushScheduled {
            isFlushScheduled = true
            eventLoop.assumeIsolated().execute { [self] in
                isFlushScheduled = false
                flush()
            }
        }
    }

    /// Hands the gathered datagrams to the channel: one GSO write, or one datagram as it came.
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

    /// Sends everything queued: the gathered datagrams, then the channel's queue.
    private func flush() {
        writeBatch()
        handler?.flush()
    }

    private func sendFragments(of packet: ByteBuffer, to remote: SocketAddress, handler: UDPChannelHandler,
                               allocator: ByteBufferAllocator) {
        let datagramSize = UDPTransport.maximumDatagramSize
        var fragments = UDPFragmenter.fragments(of: packet, messageID: nextMessageID, allocator: allocator)
        nextMessageID &+= 1
        let count = UDPFragmenter.fragmentCount(forPacketSize: packet.readableBytes)
        fragmentedPacketsSent += 1
        datagramsSent += count
        largestDatagramSent = max(largestDatagramSent, min(datagramSize, fragments.readableBytes))
        // Slices share the one buffer: no copy beyond the fragmenter's.
        if usesSegmentationOffload {
            // All datagrams but the last are exactly `segmentSize` long, as GSO needs.
            let metadata = AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil,
                                                                   segmentSize: datagramSize)
            let chunkSize = UDPFragmenter.maximumSegmentsPerWrite * datagramSize
            while let chunk = fragments.readSlice(length: min(chunkSize, fragments.readableBytes)),
                  chunk.readableBytes > 0 {
                let isSegmented = chunk.readableBytes > datagramSize
                handler.write(AddressedEnvelope(remoteAddress: remote, data: chunk,
                                                metadata: isSegmented ? metadata : nil))
                if isSegmented { offloadWrites += 1 }
            }
            hasWrittenWithOffload = true
        } else {
            while let datagram = fragments.readSlice(length: min(datagramSize, fragments.readableBytes)),
                  datagram.readableBytes > 0 {
                handler.write(AddressedEnvelope(remoteAddress: remote, data: datagram))
            }
        }
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
