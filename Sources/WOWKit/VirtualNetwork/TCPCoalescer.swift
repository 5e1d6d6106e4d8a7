import NIOCore

/// Puts consecutive TCP segments of one flow back together into one super-segment for the host, as a
/// network card's receive offload (GRO) would: the host's TCP then takes one 64 KB packet instead of 50.
/// The overlay carries each MTU-sized segment alone (`TCPSegmenter`), so that a lost datagram costs one
/// segment; this undoes the cost of that on the receiving side.
///
/// A segment is appended to the one held for its flow (same addresses and ports) only when it continues it
/// exactly: the next sequence number, the same acknowledgement, IP header fields (TOS, DF, TTL) and TCP
/// options, flags that differ at most in PSH, a payload no larger than the first segment's, and a held
/// segment that was full-sized and had no PSH (PSH, or a shorter segment, ends a super-segment, and is its
/// last). SYN, FIN, RST, URG and CWR segments, pure ACKs, packets above the MTU (already super-segments),
/// IP options, fragments and non-TCP packets are never merged: they are written as they are, after what is held for their flow (order within a flow is
/// kept; between flows it does not matter). Anything out of order or repeated simply starts a new
/// super-segment, so reordering and duplicates from the underlay pass through to the host's TCP unchanged.
///
/// Pure and I/O-free: `add` and `flush` hand what is to be written to their `write` closure, with the
/// segment size for a super-segment (nil for a single packet). At most `flowLimit` flows are held at once,
/// each in a buffer of its own that is reused (no allocation per packet once they exist); a new flow beyond
/// that writes out the oldest. The caller flushes at the end of each batch of received packets.
public struct TCPCoalescer {
    /// The most segments in one super-segment (as Linux's GRO), and its largest IP total length.
    public static let maximumSegments = 64
    public static let maximumLength = 65_535
    /// Flows held at once by default.
    public static let defaultFlowLimit = 8

    private struct Flow {
        var buffer = ByteBuffer()
        var isActive = false
        var source = VirtualIP(0)
        var destination = VirtualIP(0)
        var isIPv6 = false
        var ports: UInt32 = 0
        var headersLength = 0
        var nextSequence: UInt32 = 0
        var segmentSize = 0
        var segments = 0
        /// Nothing more may be appended (PSH seen, or a segment shorter than the first).
        var isClosed = false
        /// When it was started, for choosing the oldest.
        var started = 0
    }

    private var flows: [Flow]
    private var activeCount = 0
    private var starts = 0
    /// Segments appended to a held one, and super-segments written (of two segments or more).
    public private(set) var segmentsMerged = 0
    public private(set) var superSegmentsWritten = 0

    /// Packets longer than this (super-segments a peer sent in one piece) are written as they are.
    public let maximumSegmentLength: Int

    /// `mtu`: the device's; longer packets are never merged.
    public init(flowLimit: Int = TCPCoalescer.defaultFlowLimit, mtu: Int = VirtualNetwork.defaultMTU) {
        flows = Array(repeating: Flow(), count: max(1, flowLimit))
        maximumSegmentLength = mtu
    }

    /// Whether anything is held (then `flush` must come).
    public var isHolding: Bool { activeCount > 0 }

    /// Takes `packet`, an IP packet on its way to the host: held to be merged, or written at once (after
    /// what is held for its flow) when it cannot be. `write` gets each packet to write and its segment size
    /// (nil: a single packet); it must be done with the buffer when it returns.
    public mutating func add(_ packet: ByteBuffer, write: (ByteBuffer, Int?) -> Void) {
        add(packet, tcp: TCPHeaders(packet), write: write)
    }

    /// The same, for a packet whose headers were read already: `tcp` nil when it is no TCP packet
    /// (`TCPHeaders.init`).
    public mutating func add(_ packet: ByteBuffer, tcp: TCPHeaders?, write: (ByteBuffer, Int?) -> Void) {
        guard let tcp else { return write(packet, nil) }
        let ports = tcp.ports
        let held = heldFlow(source: tcp.source, destination: tcp.destination, ports: ports)
        let payload = tcp.payloadLength
        let unmergeable = TCPHeaders.syn | TCPHeaders.fin | TCPHeaders.rst | TCPHeaders.urg | TCPHeaders.cwr
        guard payload > 0, tcp.isIPv6 || tcp.ipHeaderLength == IPv4Packet.minimumHeaderSize, tcp.flags & unmergeable == 0,
              tcp.flags & TCPHeaders.ack != 0, tcp.totalLength <= maximumSegmentLength else {
            if let held { emit(held, write: write) }
            return write(packet, nil)
        }
        if let held {
            if canAppend(packet, tcp, to: held) {
                return append(packet, tcp, to: held)
            }
            emit(held, write: write)
            return begin(held, with: packet, tcp, ports: ports)
        }
        var index = 0
        while index < flows.count, flows[index].isActive { index += 1 }
        if index == flows.count {
            index = oldestFlow()
            emit(index, write: write)
        }
        begin(index, with: packet, tcp, ports: ports)
    }

    /// Writes out everything held, oldest first.
    public mutating func flush(write: (ByteBuffer, Int?) -> Void) {
        while activeCount > 0 { emit(oldestFlow(), write: write) }
    }

    /// The held flow of these addresses and ports.
    private func heldFlow(source: VirtualIP, destination: VirtualIP, ports: UInt32) -> Int? {
        for index in flows.indices where flows[index].isActive && flows[index].ports == ports
            && flows[index].source == source && flows[index].destination == destination {
            return index
        }
        return nil
    }

    /// The held flow started first (only called while one is held).
    private func oldestFlow() -> Int {
        var oldest = -1
        for index in flows.indices where flows[index].isActive
            && (oldest < 0 || flows[index].started < flows[oldest].started) {
            oldest = index
        }
        return oldest
    }

    private mutating func begin(_ index: Int, with packet: ByteBuffer, _ tcp: TCPHeaders, ports: UInt32) {
        let sequence = tcp.sequence
        let payload = tcp.payloadLength
        flows[index].buffer.clear()
        if flows[index].buffer.capacity < TCPCoalescer.maximumLength {
            // Once per flow buffer: room for the largest super-segment, so appending never grows it.
            flows[index].buffer.reserveCapacity(TCPCoalescer.maximumLength)
        }
        flows[index].buffer.writeImmutableBuffer(packet.getSlice(at: packet.readerIndex, length: tcp.totalLength)!)
        flows[index].isActive = true
        flows[index].source = tcp.source
        flows[index].destination = tcp.destination
        flows[index].isIPv6 = tcp.isIPv6
        flows[index].ports = ports
        flows[index].headersLength = tcp.headersLength
        flows[index].nextSequence = sequence &+ UInt32(payload)
        flows[index].segmentSize = payload
        flows[index].segments = 1
        flows[index].isClosed = tcp.flags & TCPHeaders.psh != 0
        flows[index].started = starts
        starts &+= 1
        activeCount += 1
    }

    /// Whether `packet` continues held flow `index` exactly (read in place: no copy of the flow).
    private func canAppend(_ packet: ByteBuffer, _ tcp: TCPHeaders, to index: Int) -> Bool {
        let payload = tcp.payloadLength
        guard !flows[index].isClosed, tcp.headersLength == flows[index].headersLength,
              payload <= flows[index].segmentSize, flows[index].segments < TCPCoalescer.maximumSegments,
              flows[index].buffer.readableBytes + payload <= TCPCoalescer.maximumLength,
              tcp.sequence == flows[index].nextSequence else { return false }
        let ip = tcp.ipHeaderLength
        let isIPv6 = flows[index].isIPv6
        return packet.withUnsafeReadableBytes { new in
            flows[index].buffer.withUnsafeReadableBytes { old in
                func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
                    bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
                }
                if isIPv6 {
                    // IPv6: version, traffic class and flow label; next header, hop limit.
                    guard word(new, 0) == word(old, 0), new[6] == old[6], new[7] == old[7] else { return false }
                } else {
                    // IPv4: version and header length, TOS; flags (DF) and fragment offset, TTL, protocol.
                    guard new[0] == old[0], new[1] == old[1], word(new, 6) == word(old, 6) else { return false }
                }
                // TCP: the acknowledgement, data offset, flags but PSH, and every option (whole words: a TCP
                // header is a multiple of 4 bytes long).
                guard word(new, ip + 8) == word(old, ip + 8), new[ip + 12] == old[ip + 12],
                      (new[ip + 13] ^ old[ip + 13]) & ~TCPHeaders.psh == 0 else { return false }
                var offset = ip + 20
                while offset < tcp.headersLength {
                    guard word(new, offset) == word(old, offset) else { return false }
                    offset += 4
                }
                return true
            }
        }
    }

    private mutating func append(_ packet: ByteBuffer, _ tcp: TCPHeaders, to index: Int) {
        let payload = tcp.payloadLength
        let ip = tcp.ipHeaderLength
        let isPush = tcp.flags & TCPHeaders.psh != 0
        packet.withUnsafeReadableBytes { new in
            flows[index].buffer.withUnsafeMutableReadableBytes { held in
                // The window the receiver advertised last is the one that holds (both in network order).
                held.storeBytes(of: new.loadUnaligned(fromByteOffset: ip + 14, as: UInt16.self), toByteOffset: ip + 14,
                                as: UInt16.self)
                if isPush { held[ip + 13] |= TCPHeaders.psh }
            }
            flows[index].buffer.writeBytes(UnsafeRawBufferPointer(rebasing: new[tcp.headersLength..<(tcp.headersLength + payload)]))
        }
        if isPush { flows[index].isClosed = true }
        if payload < flows[index].segmentSize { flows[index].isClosed = true }
        flows[index].nextSequence &+= UInt32(payload)
        flows[index].segments += 1
        segmentsMerged += 1
    }

    /// Writes out flow `index`: a single segment as it came, several as one super-segment with its IP length
    /// (and IPv4's header checksum) fixed (the TCP checksum is the device's to set: partial, for the host).
    private mutating func emit(_ index: Int, write: (ByteBuffer, Int?) -> Void) {
        flows[index].isActive = false
        activeCount -= 1
        if flows[index].segments > 1 {
            let isIPv6 = flows[index].isIPv6
            TCPHeaders.setLength(flows[index].buffer.readableBytes, isIPv6: isIPv6,
                                 ipHeaderLength: isIPv6 ? IPv6Packet.headerSize : IPv4Packet.minimumHeaderSize,
                                 in: &flows[index].buffer)
            superSegmentsWritten += 1
            write(flows[index].buffer, flows[index].segmentSize)
        } else {
            write(flows[index].buffer, nil)
        }
        flows[index].buffer.clear()
    }
}
