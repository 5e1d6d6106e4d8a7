import NIOCore

/// Every packet that travels on an edge: link handshake and edge upkeep messages, or a routed overlay packet.
///
/// Layout: `version:u8 kind:u8 body` (docs/protocol.md gives each body byte by byte). `decode` is total:
/// any input yields a message or a `WireError`.
public enum EdgeMessage: Equatable, Sendable {
    case linkRequest(LinkRequest)
    case linkReply(LinkReply)
    case linkError(LinkError)
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)
    case close(Close)
    case status(Status)
    case routed(RoutedPacket)

    /// The kind byte of each message.
    public enum Kind: UInt8, Sendable {
        case linkRequest = 0x01
        case linkReply = 0x02
        case linkError = 0x03
        case ping = 0x04
        case pong = 0x05
        case close = 0x06
        case status = 0x07
        case routed = 0x10
    }

    /// Whether the message belongs to a connection (`ping`, `pong`, `status`, `routed`), as opposed to the link
    /// handshake or `close`: a receiver holding no connection on the edge answers it with `close` `notLinked`.
    public var isConnectionTraffic: Bool {
        switch self {
        case .ping, .pong, .status, .routed: return true
        case .linkRequest, .linkReply, .linkError, .close: return false
        }
    }

    /// Whether the message carries application traffic: routed data, sealed end to end or not. Only such
    /// traffic makes `PathWatch` expect an answer on the edge: ring upkeep (pings, status, Connect-To-Me, link
    /// handshakes) often gets its answer another way or none, and an idle connection's death is `Liveness`'s
    /// to find. Relay tunnel frames do not count on the forwarder's edge: a relayed connection's data counts on
    /// its own (relay) edge, whose silence moves that connection, and its upkeep is upkeep.
    public var isApplicationTraffic: Bool {
        guard case .routed(let packet) = self else { return false }
        return packet.isApplicationTraffic
    }

    public var kind: Kind {
        switch self {
        case .linkRequest: return .linkRequest
        case .linkReply: return .linkReply
        case .linkError: return .linkError
        case .ping: return .ping
        case .pong: return .pong
        case .close: return .close
        case .status: return .status
        case .routed: return .routed
        }
    }

    /// Bytes a routed packet adds around its payload on an edge: version, kind and the routed header.
    public static let routedOverhead = 2 + RoutedHeader.byteCount

    /// Encodes into a fresh buffer, with `headroom` bytes free before the message and room for `tailroom`
    /// after it (a secure channel seals it in place there: `SecureChannel.sealingHeadroom`).
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator(), headroom: Int = 0,
                        tailroom: Int = 0) -> ByteBuffer {
        if case .routed(let packet) = self {
            return packet.encodedMessage(allocator: allocator, headroom: headroom, tailroom: tailroom)
        }
        var buffer = allocator.buffer(capacity: headroom + 64 + tailroom)
        if headroom > 0 {
            buffer.moveWriterIndex(to: headroom)
            buffer.moveReaderIndex(to: headroom)
        }
        encode(into: &buffer)
        return buffer
    }

    public func encode(into buffer: inout ByteBuffer) {
        // The data path: the version and kind go in the routed header's one write.
        if case .routed(let m) = self { return m.encode(into: &buffer, version: WireFormat.version, kind: kind.rawValue) }
        buffer.writeInteger(WireFormat.version)
        buffer.writeInteger(kind.rawValue)
        switch self {
        case .linkRequest(let m): m.encode(into: &buffer)
        case .linkReply(let m): m.encode(into: &buffer)
        case .linkError(let m): m.encode(into: &buffer)
        case .ping(let nonce), .pong(let nonce): buffer.writeInteger(nonce, endianness: .big)
        case .close(let m): m.encode(into: &buffer)
        case .status(let m): m.encode(into: &buffer)
        case .routed: break  // written above
        }
    }

    /// Parses one whole packet.
    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> EdgeMessage {
        var (reader, kind) = try start(buffer)
        let message: EdgeMessage
        switch kind {
        case .linkRequest: message = .linkRequest(try LinkRequest(from: &reader))
        case .linkReply: message = .linkReply(try LinkReply(from: &reader))
        case .linkError: message = .linkError(try LinkError(from: &reader))
        case .ping: message = .ping(nonce: try reader.u64("nonce"))
        case .pong: message = .pong(nonce: try reader.u64("nonce"))
        case .close: message = .close(try Close(from: &reader))
        case .status: message = .status(try Status(from: &reader))
        case .routed: message = .routed(try RoutedPacket(from: &reader))
        }
        try reader.expectEnd()
        return message
    }

    /// Whether `buffer` starts with this version's routed kind (the bulk of what edges carry): then
    /// `decodeRouted` parses it.
    static func isRouted(_ buffer: ByteBuffer) -> Bool {
        buffer.readableBytes >= 2
            && buffer.withUnsafeReadableBytes { $0[0] == WireFormat.version && $0[1] == Kind.routed.rawValue }
    }

    /// A routed message's packet, as `decode` gives it (`.routed`), without the enum around it. Throws as
    /// `decode` would for any other message.
    static func decodeRouted(_ buffer: ByteBuffer) throws(WireError) -> RoutedPacket {
        var (reader, kind) = try start(buffer)
        guard kind == .routed else { throw .unknownKind(kind.rawValue) }
        let packet = try RoutedPacket(from: &reader)
        try reader.expectEnd()
        return packet
    }

    /// Checks a packet's size and version and reads its kind; the reader is left at the body.
    private static func start(_ buffer: ByteBuffer) throws(WireError) -> (WireReader, Kind) {
        guard buffer.readableBytes <= WireFormat.maximumPacketSize else {
            throw .packetTooLarge(buffer.readableBytes)
        }
        var reader = WireReader(buffer)
        let version: UInt8, kindByte: UInt8
        if buffer.readableBytes >= 2 {
            // Both in one access: every packet on every edge starts here.
            (version, kindByte) = buffer.withUnsafeReadableBytes { ($0[0], $0[1]) }
            reader.buffer.moveReaderIndex(forwardBy: 2)
            guard version == WireFormat.version else { throw .badVersion(version) }
        } else {
            version = try reader.u8("version")
            guard version == WireFormat.version else { throw .badVersion(version) }
            kindByte = try reader.u8("kind")
        }
        guard let kind = Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        return (reader, kind)
    }
}

/// Asks the node at the other end of an edge to become a connection of `type`.
public struct LinkRequest: Equatable, Sendable {
    /// Chosen by the requester; echoed in the reply or error.
    public var token: UInt64
    public var type: ConnectionType
    public var requester: NodeInfo
    /// The address the requester expects to find there; nil when it does not know (a bootstrap URI).
    public var target: Address?
    /// The URI the requester sent this to, as the requester sees it.
    public var observedURI: TransportURI

    public init(token: UInt64, type: ConnectionType, requester: NodeInfo, target: Address?, observedURI: TransportURI) {
        self.token = token
        self.type = type
        self.requester = requester
        self.target = target
        self.observedURI = observedURI
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(token, endianness: .big)
        buffer.writeShortText(type.name, limit: ConnectionType.maximumLength)
        buffer.writeNodeInfo(requester)
        buffer.writeOptionalAddress(target)
        buffer.writeShortText(observedURI.text, limit: TransportURI.maximumLength)
    }

    init(from reader: inout WireReader) throws(WireError) {
        token = try reader.u64("token")
        type = try reader.connectionType("connection_type")
        requester = try reader.nodeInfo("requester")
        target = try reader.optionalAddress("target")
        observedURI = try reader.uri("observed_uri")
    }
}

/// Accepts a link request: the connection exists from the moment the reply is sent.
public struct LinkReply: Equatable, Sendable {
    public var token: UInt64
    public var responder: NodeInfo
    /// The requester's URI as the responder sees it (how nodes learn their NAT-mapped URIs).
    public var observedURI: TransportURI
    /// The responder's nearest neighbours, so the requester can find nodes nearer to itself.
    public var neighbours: [NodeInfo]

    public init(token: UInt64, responder: NodeInfo, observedURI: TransportURI, neighbours: [NodeInfo]) {
        self.token = token
        self.responder = responder
        self.observedURI = observedURI
        self.neighbours = Array(neighbours.prefix(WireFormat.maximumNeighbours))
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(token, endianness: .big)
        buffer.writeNodeInfo(responder)
        buffer.writeShortText(observedURI.text, limit: TransportURI.maximumLength)
        buffer.writeNodeInfos(neighbours)
    }

    init(from reader: inout WireReader) throws(WireError) {
        token = try reader.u64("token")
        responder = try reader.nodeInfo("responder")
        observedURI = try reader.uri("observed_uri")
        neighbours = try reader.nodeInfos("neighbours")
    }
}

/// Refuses a link request, with a typed reason.
public struct LinkError: Equatable, Sendable {
    public enum Code: UInt8, Sendable, CaseIterable {
        /// Both ends were linking at once and the other attempt wins (the larger address's attempt).
        case raceLost = 1
        /// The responder is not the node the requester asked for.
        case wrongTarget = 2
        /// The responder has no room for another connection.
        case tableFull = 3
        /// The responder will not link (e.g. shutting down).
        case refused = 4
        /// The requester reached itself.
        case selfLink = 5
    }

    public var token: UInt64
    public var code: Code
    public var message: String

    public init(token: UInt64, code: Code, message: String) {
        self.token = token
        self.code = code
        self.message = message
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(token, endianness: .big)
        buffer.writeInteger(code.rawValue)
        buffer.writeShortText(message, limit: WireFormat.maximumMessageLength)
    }

    init(from reader: inout WireReader) throws(WireError) {
        token = try reader.u64("token")
        let raw = try reader.u8("error_code")
        guard let code = Code(rawValue: raw) else { throw .unknownValue(field: "error_code", value: raw) }
        self.code = code
        message = try reader.text("message", limit: WireFormat.maximumMessageLength)
    }
}

/// Ends a connection; the edge is closed after it is sent.
public struct Close: Equatable, Sendable {
    public enum Reason: UInt8, Sendable, CaseIterable {
        /// No overlord needs the connection any more.
        case trimmed = 1
        /// The node is shutting down.
        case shutdown = 2
        /// A newer connection to the same node replaced this one.
        case replaced = 3
        /// The peer broke the protocol.
        case protocolViolation = 4
        /// The receiver has no connection on the edge the sender used: a peer whose NAT mapping or address
        /// changed learns at once that its old connection is gone and links again from where it is now.
        case notLinked = 5
        /// The peer's membership certificate expired or was revoked.
        case notAuthorized = 6
    }

    public var reason: Reason
    public var message: String

    public init(reason: Reason, message: String) {
        self.reason = reason
        self.message = message
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(reason.rawValue)
        buffer.writeShortText(message, limit: WireFormat.maximumMessageLength)
    }

    init(from reader: inout WireReader) throws(WireError) {
        let raw = try reader.u8("close_reason")
        guard let reason = Reason(rawValue: raw) else { throw .unknownValue(field: "close_reason", value: raw) }
        self.reason = reason
        message = try reader.text("message", limit: WireFormat.maximumMessageLength)
    }
}

/// Tells a connected peer the sender's current nearest neighbours, so rings repair and nearer nodes are found.
public struct Status: Equatable, Sendable {
    public var neighbours: [NodeInfo]

    public init(neighbours: [NodeInfo]) { self.neighbours = Array(neighbours.prefix(WireFormat.maximumNeighbours)) }

    func encode(into buffer: inout ByteBuffer) { buffer.writeNodeInfos(neighbours) }

    init(from reader: inout WireReader) throws(WireError) { neighbours = try reader.nodeInfos("neighbours") }
}
