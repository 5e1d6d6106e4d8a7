import NIOCore

/// Constants of the wire format (see docs/protocol.md).
public enum WireFormat {
    /// The protocol version in the first byte of every packet.
    public static let version: UInt8 = 1
    /// No packet on an edge is larger than this (so one fits a 16-bit length on stream transports).
    public static let maximumPacketSize = 65_535
    /// At most this many NodeInfos in a neighbour list.
    public static let maximumNeighbours = 32
    /// At most this many bytes in a human-readable message field.
    public static let maximumMessageLength = 255
    /// Set in a NodeInfo's `uri_count`: a 32-byte handshake key follows its URIs.
    static let handshakeKeyFlag: UInt8 = 0x80
    /// Set in a NodeInfo's `uri_count`: the node's NAT maps per peer (`NodeInfo.mapsPerPeer`).
    static let mapsPerPeerFlag: UInt8 = 0x40
}

/// Reads wire fields from a `ByteBuffer`, throwing `WireError` instead of trapping.
struct WireReader {
    var buffer: ByteBuffer

    init(_ buffer: ByteBuffer) { self.buffer = buffer }

    mutating func u8(_ field: String) throws(WireError) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw .truncated(field: field) }
        return v
    }

    mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        guard let v = buffer.readInteger(endianness: .big, as: UInt16.self) else { throw .truncated(field: field) }
        return v
    }

    mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        guard let v = buffer.readInteger(endianness: .big, as: UInt32.self) else { throw .truncated(field: field) }
        return v
    }

    /// Exactly `count` raw bytes.
    mutating func bytes(_ field: String, count: Int) throws(WireError) -> [UInt8] {
        guard let bytes = buffer.readBytes(length: count) else { throw .truncated(field: field) }
        return bytes
    }

    /// A u16-length-prefixed byte string of at most `limit` bytes.
    mutating func lengthPrefixed(_ field: String, limit: Int) throws(WireError) -> [UInt8] {
        let length = Int(try u16("\(field) length"))
        guard length <= limit else { throw .tooLong(field: field, length: length, limit: limit) }
        return try bytes(field, count: length)
    }

    mutating func u64(_ field: String) throws(WireError) -> UInt64 {
        guard let v = buffer.readInteger(endianness: .big, as: UInt64.self) else { throw .truncated(field: field) }
        return v
    }

    mutating func address(_ field: String) throws(WireError) -> Address {
        guard buffer.readableBytes >= Address.byteCount else { throw .truncated(field: field) }
        let address = buffer.withUnsafeReadableBytes { Address(loadingFrom: $0, at: 0) }
        buffer.moveReaderIndex(forwardBy: Address.byteCount)
        return address
    }

    /// A u8-length-prefixed UTF-8 string of at most `limit` bytes.
    mutating func text(_ field: String, limit: Int) throws(WireError) -> String {
        let length = Int(try u8("\(field) length"))
        guard length <= limit else { throw .tooLong(field: field, length: length, limit: limit) }
        guard let bytes = buffer.readBytes(length: length) else { throw .truncated(field: field) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidText(field: field, reason: "not UTF-8")
        }
        return text
    }

    mutating func uri(_ field: String) throws(WireError) -> TransportURI {
        try Self.transportURI(try text(field, limit: TransportURI.maximumLength), field: field)
    }

    private static func transportURI(_ text: String, field: String) throws(WireError) -> TransportURI {
        do {
            return try TransportURI(text)
        } catch {
            throw .invalidText(field: field, reason: error.description)
        }
    }

    /// A NodeInfo's URI (`CompactURI`): a u8 length, then the text with the addresses in it as bytes.
    mutating func compactURI(_ field: String, own: Address) throws(WireError) -> TransportURI {
        let length = Int(try u8("\(field) length"))
        guard let encoded = buffer.readBytes(length: length) else { throw .truncated(field: field) }
        guard let bytes = CompactURI.decode(encoded, own: own) else {
            throw .invalidText(field: field, reason: "an address marker (0xFF) without its 20 bytes")
        }
        guard bytes.count <= TransportURI.maximumLength else {
            throw .tooLong(field: field, length: bytes.count, limit: TransportURI.maximumLength)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidText(field: field, reason: "not UTF-8") }
        // One way to write each URI: an address spelled out, or a marker next to more hex digits, is refused.
        guard CompactURI.encode(text, own: own) == encoded else {
            throw .invalidText(field: field, reason: "not in compact form (an address must travel as bytes)")
        }
        return try Self.transportURI(text, field: field)
    }

    mutating func connectionType(_ field: String) throws(WireError) -> ConnectionType {
        let text = try text(field, limit: ConnectionType.maximumLength)
        guard let type = ConnectionType(validating: text) else {
            throw .invalidText(field: field, reason: "'\(text)' is not a connection type name")
        }
        return type
    }

    /// A NodeInfo.
    mutating func nodeInfo(_ field: String) throws(WireError) -> NodeInfo {
        let address = try address("\(field).address")
        let countAndFlag = try u8("\(field).uri_count")
        let count = Int(countAndFlag & ~(WireFormat.handshakeKeyFlag | WireFormat.mapsPerPeerFlag))
        guard count <= NodeInfo.maximumURIs else {
            throw .tooLong(field: "\(field).uri_count", length: count, limit: NodeInfo.maximumURIs)
        }
        var uris = [TransportURI]()
        uris.reserveCapacity(count)
        for _ in 0..<count { uris.append(try compactURI("\(field).uri", own: address)) }
        let key = countAndFlag & WireFormat.handshakeKeyFlag != 0
            ? try bytes("\(field).handshake_key", count: NodeInfo.handshakeKeySize) : nil
        return NodeInfo(address: address, uris: uris, handshakeKey: key,
                        mapsPerPeer: countAndFlag & WireFormat.mapsPerPeerFlag != 0)
    }

    mutating func nodeInfos(_ field: String) throws(WireError) -> [NodeInfo] {
        let count = Int(try u8("\(field) count"))
        guard count <= WireFormat.maximumNeighbours else {
            throw .tooLong(field: "\(field) count", length: count, limit: WireFormat.maximumNeighbours)
        }
        var infos = [NodeInfo]()
        infos.reserveCapacity(count)
        for _ in 0..<count { infos.append(try nodeInfo(field)) }
        return infos
    }

    /// Optional address: a presence byte (0 or 1) then the address.
    mutating func optionalAddress(_ field: String) throws(WireError) -> Address? {
        switch try u8("\(field) presence") {
        case 0: return nil
        case 1: return try address(field)
        case let other: throw .unknownValue(field: "\(field) presence", value: other)
        }
    }

    func expectEnd() throws(WireError) {
        if buffer.readableBytes > 0 { throw .trailingBytes(buffer.readableBytes) }
    }
}

extension Address {
    /// Stores the wire form (big-endian, 20 bytes) at `offset` of `raw`, which must have the room.
    func store(into raw: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + Address.byteCount <= raw.count, "no room for an address")
        raw.storeBytes(of: high.bigEndian, toByteOffset: offset, as: UInt64.self)
        raw.storeBytes(of: middle.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
        raw.storeBytes(of: low.bigEndian, toByteOffset: offset + 16, as: UInt32.self)
    }

    /// Loads the wire form at `offset` of `raw`, which must hold the 20 bytes.
    init(loadingFrom raw: UnsafeRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + Address.byteCount <= raw.count, "too few bytes for an address")
        self.init(high: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)),
                  middle: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)),
                  low: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: offset + 16, as: UInt32.self)))
    }
}

/// Writes wire fields into a `ByteBuffer`. Values are assumed valid (the types enforce their limits);
/// lists are cut to their wire limits.
extension ByteBuffer {
    mutating func writeAddress(_ address: Address) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: Address.byteCount) { raw in
            address.store(into: raw, at: 0)
            return Address.byteCount
        }
    }

    mutating func writeShortText(_ text: String, limit: Int) {
        var bytes = Array(text.utf8)
        if bytes.count > limit {
            // Cut on a character boundary so the result stays valid UTF-8.
            var cut = limit
            while cut > 0 && (bytes[cut] & 0xC0) == 0x80 { cut -= 1 }
            bytes = Array(bytes[..<cut])
        }
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
    }

    /// Writes `info`, with its handshake key when it has one.
    mutating func writeNodeInfo(_ info: NodeInfo) {
        writeAddress(info.address)
        let uris = info.uris.prefix(NodeInfo.maximumURIs)
        let key = info.handshakeKey.flatMap { $0.count == NodeInfo.handshakeKeySize ? $0 : nil }
        writeInteger(UInt8(uris.count) | (key == nil ? 0 : WireFormat.handshakeKeyFlag)
                     | (info.mapsPerPeer ? WireFormat.mapsPerPeerFlag : 0))
        for uri in uris {
            // Never longer than the text, which a TransportURI keeps within `maximumLength` (255).
            let compact = CompactURI.encode(uri.text, own: info.address)
            writeInteger(UInt8(compact.count))
            writeBytes(compact)
        }
        if let key { writeBytes(key) }
    }

    mutating func writeNodeInfos(_ infos: [NodeInfo]) {
        let list = infos.prefix(WireFormat.maximumNeighbours)
        writeInteger(UInt8(list.count))
        for info in list { writeNodeInfo(info) }
    }

    mutating func writeOptionalAddress(_ address: Address?) {
        if let address {
            writeInteger(UInt8(1))
            writeAddress(address)
        } else {
            writeInteger(UInt8(0))
        }
    }
}
