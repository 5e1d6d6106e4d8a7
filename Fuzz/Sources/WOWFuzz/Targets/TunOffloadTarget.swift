import NIOCore
@testable import Transports
import WOWKit

/// The TUN device's offload path, both ways, without a device: a packet behind a `virtio_net_hdr` as the
/// kernel hands it up (`TunOffload.fromHost`: checksum completion, super-segments), cut into segments as the
/// virtual interface sends them (`TCPSegmenter`), put back together on the receiving side (`TCPCoalescer`),
/// and given the header it is written to the device with (`TunOffload.toHost`), which is read back again.
///
/// The input: a mode byte (bit 0: grow the packet to its IP length, so super-segments reach 64 KB;
/// bits 1-2: segments per overlay packet - 1; bit 3: a 576-byte MTU for the coalescer), the 10-byte header,
/// then the packet.
///
/// Checks: exactly one delivery or a drop reason; the header reads and writes back to the same bytes;
/// segments are well-formed TCP packets (IPv4 or IPv6; IPv4's with a valid header checksum; exact length) whose payloads, sequence
/// numbers and flags add up to the super-segment's; the coalescer's output carries exactly the segments'
/// payload bytes in order, its super-segments well-formed; a header from `toHost` is read back by `fromHost`
/// with the same segment size, and a TCP checksum it completes verifies.
enum TunOffloadTarget: FuzzTarget {
    static let name = "tun-offload"
    static let summary = "virtio_net_hdr, TunOffload both ways, TCPSegmenter -> TCPCoalescer; bytes and checksums preserved"

    static func payload(of packet: ByteBuffer) -> [UInt8] {
        guard let tcp = TCPHeaders(packet) else { return Array(packet.readableBytesView) }
        return Array(packet.readableBytesView.dropFirst(tcp.headersLength).prefix(tcp.payloadLength))
    }

    static func u16(_ bytes: [UInt8], _ offset: Int) -> Int { Int(bytes[offset]) << 8 | Int(bytes[offset + 1]) }
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) } }

    /// A segment or super-segment the interface made: an exact, well-formed TCP packet (IPv4: valid header
    /// checksum).
    static func checkWellFormed(_ packet: ByteBuffer, _ what: String) -> TCPHeaders? {
        guard let tcp = TCPHeaders(packet) else {
            require(false, "\(what) is no TCP packet: \(Array(packet.readableBytesView.prefix(60)))")
            return nil
        }
        let bytes = Array(packet.readableBytesView)
        require(tcp.totalLength == bytes.count, "\(what): total length \(tcp.totalLength) of \(bytes.count) bytes")
        require(tcp.isIPv6 || IPv4Packet.checksum(bytes[0..<tcp.ipHeaderLength]) == 0, "\(what): bad IP header checksum")
        return tcp
    }

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let headerBytes = input.bytes(VirtioNetHeader.size)
        var packet = input.rest()
        if mode & 1 != 0, packet.count >= 6 {
            let total = packet[0] >> 4 == 6 ? 40 + u16(packet, 4) : u16(packet, 2)
            if total > packet.count { packet += PacketSamples.payload(total - packet.count) }
        }
        let perPacket = Int(mode >> 1 & 3) + 1
        let mtu = mode & 8 != 0 ? 576 : VirtualNetwork.defaultMTU

        var header = ByteBuffer(bytes: headerBytes)
        if let parsed = VirtioNetHeader.read(from: &header) {
            var written = [UInt8](repeating: 0, count: VirtioNetHeader.size)
            written.withUnsafeMutableBytes { parsed.write(to: $0) }
            require(written == headerBytes, "virtio header \(headerBytes) written back as \(written)")
        }

        var deliveries: [(ByteBuffer, Int?)] = []
        let reason = TunOffload.fromHost(ByteBuffer(bytes: headerBytes + packet)) { deliveries.append(($0, $1)) }
        require((reason == nil) == (deliveries.count == 1) && deliveries.count <= 1,
                "fromHost: reason \(String(describing: reason)), \(deliveries.count) deliveries")
        guard let (fromHost, segmentSize) = deliveries.first else { return }

        // Into the overlay: the super-segment's pieces.
        var pieces: [ByteBuffer] = []
        if let segmentSize {
            require(segmentSize > 0, "a super-segment with segment size 0")
            guard let tcp = TCPHeaders(fromHost), tcp.payloadLength > 0 else {
                return require(false, "a super-segment that is no TCP packet with a payload")
            }
            // Thousands of tiny segments take the same path as a few, only slower.
            guard tcp.payloadLength / (segmentSize * perPacket) <= 256 else { return }
            var scratch = ByteBuffer()
            let cut = TCPSegmenter.segments(of: fromHost, segmentSize: segmentSize, segmentsPerPacket: perPacket,
                                            scratch: &scratch) { pieces.append(ByteBuffer(bytes: Array($0.readableBytesView))) }
            require(cut, "TCPSegmenter refused a super-segment fromHost delivered")
            checkSegments(pieces, of: fromHost, tcp, pieceSize: segmentSize * perPacket)
        } else {
            pieces = [fromHost]
        }

        // Out of the overlay: the coalescer, then the header each packet is written with.
        var coalescer = TCPCoalescer(flowLimit: 2, mtu: mtu)
        var written: [(ByteBuffer, Int?)] = []
        let write: (ByteBuffer, Int?) -> Void = { written.append((ByteBuffer(bytes: Array($0.readableBytesView)), $1)) }
        for piece in pieces { coalescer.add(piece, write: write) }
        coalescer.flush(write: write)
        require(!coalescer.isHolding, "the coalescer holds packets after a flush")
        let before = pieces.flatMap { payload(of: $0) }
        let after = written.flatMap { payload(of: $0.0) }
        require(sameBytes(before, after), "the coalescer changed the payload: \(before.count) bytes in, \(after.count) out")
        for (packet, segmentSize) in written {
            if let segmentSize, let tcp = checkWellFormed(packet, "a coalesced super-segment") {
                require(tcp.payloadLength > segmentSize && tcp.payloadLength <= TCPCoalescer.maximumSegments * segmentSize,
                        "a super-segment of \(tcp.payloadLength) bytes in segments of \(segmentSize)")
            }
            checkToHost(packet, mtu: mtu, segmentSize: segmentSize)
        }
    }

    static func checkSegments(_ pieces: [ByteBuffer], of packet: ByteBuffer, _ tcp: TCPHeaders, pieceSize: Int) {
        let original = Array(packet.readableBytesView)
        if tcp.payloadLength <= pieceSize {
            return require(pieces.count == 1 && pieces[0] == packet, "a packet within the piece size was cut")
        }
        let sequence = u32(original, tcp.ipHeaderLength + 4)
        var offset = 0
        for (index, piece) in pieces.enumerated() {
            guard let segment = checkWellFormed(piece, "segment \(index)") else { return }
            let bytes = Array(piece.readableBytesView)
            require(segment.headersLength == tcp.headersLength, "segment \(index) has other headers")
            require(segment.payloadLength >= 1 && segment.payloadLength <= pieceSize, "segment \(index) of \(segment.payloadLength) bytes")
            require(u32(bytes, tcp.ipHeaderLength + 4) == sequence &+ UInt32(offset), "segment \(index): sequence number")
            let last = index == pieces.count - 1
            let flags = segment.flags
            require(last || flags & (TCPHeaders.fin | TCPHeaders.psh) == 0, "FIN or PSH before the last segment")
            require(index == 0 || flags & TCPHeaders.cwr == 0, "CWR after the first segment")
            require(piece.getSlice(at: piece.readerIndex + tcp.headersLength, length: segment.payloadLength)
                        == packet.getSlice(at: packet.readerIndex + tcp.headersLength + offset, length: segment.payloadLength),
                    "segment \(index) carries other bytes")
            offset += segment.payloadLength
        }
        require(offset == tcp.payloadLength, "the segments carry \(offset) of \(tcp.payloadLength) bytes")
    }

    static func checkToHost(_ packet: ByteBuffer, mtu: Int, segmentSize: Int?) {
        let (header, partial) = TunOffload.toHost(packet, mtu: mtu, segmentSize: segmentSize)
        guard let tcp = TCPHeaders(packet), let partial else {
            return require(header == VirtioNetHeader() && partial == nil && TCPHeaders(packet) == nil,
                           "toHost of a non-TCP packet: \(header), \(String(describing: partial))")
        }
        require(header.flags == VirtioNetHeader.needsChecksum && Int(header.checksumStart) == tcp.ipHeaderLength
                    && header.checksumOffset == TCPHeaders.checksumOffset, "toHost header \(header)")
        let gso = header.gsoType & ~VirtioNetHeader.gsoECN
        let isSuperSegment = gso != VirtioNetHeader.gsoNone
        if isSuperSegment {
            require(gso == (tcp.isIPv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4), "toHost gso type \(gso)")
            require(header.gsoSize > 0 && Int(header.headerLength) == tcp.headersLength
                        && tcp.payloadLength > Int(header.gsoSize), "toHost super-segment header \(header)")
        } else {
            require(header.gsoType == VirtioNetHeader.gsoNone, "toHost gso type \(header.gsoType)")
        }
        // What the device would read back: the header, then the packet with the partial checksum in place.
        var bytes = [UInt8](repeating: 0, count: VirtioNetHeader.size)
        bytes.withUnsafeMutableBytes { header.write(to: $0) }
        var body = Array(packet.readableBytesView)
        let field = tcp.ipHeaderLength + Int(TCPHeaders.checksumOffset)
        body[field] = UInt8(partial >> 8)
        body[field + 1] = UInt8(partial & 0xFF)
        var readBack: [(ByteBuffer, Int?)] = []
        let reason = TunOffload.fromHost(ByteBuffer(bytes: bytes + body)) { readBack.append(($0, $1)) }
        require(reason == nil && readBack.count == 1, "fromHost refused what toHost wrote: \(String(describing: reason))")
        guard let (back, gso) = readBack.first else { return }
        require(gso == (isSuperSegment ? Int(header.gsoSize) : nil), "read back with segment size \(String(describing: gso))")
        if !isSuperSegment, tcp.totalLength == back.readableBytes {
            let segment = Array(back.readableBytesView.dropFirst(tcp.ipHeaderLength))
            // The pseudo-header from the packet's own bytes (IPv4: addresses at 12, IPv6: at 8).
            let addresses = tcp.isIPv6 ? Array(body[8..<40]) : Array(body[12..<20])
            let pseudo = PacketSamples.sum(addresses + PacketSamples.bytes(UInt32(segment.count)) + [0, 0, 0, IPv4Packet.tcpProtocol])
            require(IPv4Packet.fold(PacketSamples.sum(segment, initial: pseudo)) == 0xFFFF,
                    "the TCP checksum completed from toHost's partial checksum does not verify")
        }
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func header(flags: UInt8 = 0, gso: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                    start: UInt16 = 0, offset: UInt16 = 0) -> [UInt8] {
            var header = VirtioNetHeader()
            header.flags = flags
            header.gsoType = gso
            header.headerLength = headerLength
            header.gsoSize = gsoSize
            header.checksumStart = start
            header.checksumOffset = offset
            var bytes = [UInt8](repeating: 0, count: VirtioNetHeader.size)
            bytes.withUnsafeMutableBytes { header.write(to: $0) }
            return bytes
        }
        let small = PacketSamples.tcp(payload: Array(PacketSamples.payload(40)))
        let large = PacketSamples.tcp(payload: Array(PacketSamples.payload(3000)), flags: 0x18 | 0x80)
        let fin = PacketSamples.tcp(payload: Array(PacketSamples.payload(900)), flags: 0x19)
        var huge = PacketSamples.tcp(payload: Array(PacketSamples.payload(100)))
        huge[2] = 0xFF
        huge[3] = 0xFF
        return [
            ("plain", [0] + header() + small),
            ("needs-checksum", [0] + header(flags: 1, start: 20, offset: 16) + small),
            ("udp-checksum", [0] + header(flags: 1, start: 20, offset: 6) + PacketSamples.udp(payload: [0, 0, 0xFF, 0xFF])),
            ("super-segment", [0] + header(flags: 1, gso: 1, headerLength: 52, gsoSize: 1208, start: 20, offset: 16) + large),
            ("super-segment-pieces", [4] + header(flags: 1, gso: 0x81, headerLength: 52, gsoSize: 100, start: 20, offset: 16) + large),
            ("super-segment-fin-small-mtu", [8] + header(flags: 1, gso: 1, headerLength: 52, gsoSize: 200, start: 20, offset: 16) + fin),
            ("grown-to-64k", [1] + header(gso: 1, headerLength: 52, gsoSize: 1208) + huge),
            ("bad-offset", [0] + header(flags: 1, start: 2000, offset: 16) + small),
            ("unexpected-gso", [0] + header(gso: 3) + small),
            ("super-segment-ipv6", [0] + header(flags: 1, gso: 4, headerLength: 72, gsoSize: 1208, start: 40, offset: 16)
                + PacketSamples.tcp6(payload: Array(PacketSamples.payload(3000)))),
            ("udp6-checksum", [0] + header(flags: 1, start: 40, offset: 6) + PacketSamples.udp6(payload: [0, 0, 0xFF, 0xFF])),
        ]
    }
}
