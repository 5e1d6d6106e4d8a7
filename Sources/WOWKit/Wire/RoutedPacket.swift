import NIOCore

/// How a routed packet is delivered.
public enum DeliveryMode: UInt8, Sendable, CaseIterable {
    /// Only to the node at exactly `destination`; if it is absent, the source gets a routing error.
    case exact = 0
    /// To the node nearest to `destination` (either side), never to the source itself.
    case nearest = 1
    /// To the first node on the left of `destination` (greater address), excluding `destination` itself:
    /// the left neighbour of that position.
    case left = 2
    /// To the first node on the right of `destination` (smaller address), excluding `destination` itself.
    case right = 3
}

/// What a routed packet carries.
public struct PayloadType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Application data (IP packets later); opaque to the overlay.
    public static let data = PayloadType(rawValue: 0x01)
    /// A Connect-To-Me request (`ConnectToMe`).
    public static let connectToMe = PayloadType(rawValue: 0x02)
    /// A Connect-To-Me reply (`ConnectToMeReply`).
    public static let connectToMeReply = PayloadType(rawValue: 0x03)
    /// A routing error (`RoutingError`) about a packet the destination did not get.
    public static let routingError = PayloadType(rawValue: 0x04)
    /// An edge frame tunnelled through the overlay (`TunnelFrame`; the `relay` transport's edges).
    public static let tunnel = PayloadType(rawValue: 0x05)
    /// A frame of an end-to-end secure session (`SecureFrame`) between source and destination; sealed, its
    /// plaintext is `payload_type:u8 payload` (data the two ends exchange over the ring).
    public static let secure = PayloadType(rawValue: 0x06)
    /// An overlay echo request (`Echo`, `wow ping`): the destination answers with an `echoReply`.
    public static let echoRequest = PayloadType(rawValue: 0x07)
    /// The answer to an `echoRequest` (`Echo`).
    public static let echoReply = PayloadType(rawValue: 0x08)
    /// The name service (`NameMessage`): a record to keep, a question for one, and its answer.
    public static let namePut = PayloadType(rawValue: 0x09)
    public static let nameGet = PayloadType(rawValue: 0x0A)
    public static let nameAnswer = PayloadType(rawValue: 0x0B)

    public var description: String {
        switch self {
        case .data: return "data"
        case .connectToMe: return "ctm"
        case .connectToMeReply: return "ctm_reply"
        case .routingError: return "routing_error"
        case .tunnel: return "tunnel"
        case .secure: return "secure"
        case .echoRequest: return "echo_request"
        case .echoReply: return "echo_reply"
        case .namePut: return "name_put"
        case .nameGet: return "name_get"
        case .nameAnswer: return "name_answer"
        default: return "payload_\(rawValue)"
        }
    }
}

/// The header of every routed packet: `hops:u8 ttl:u8 mode:u8 payload_type:u8 source:20 destination:20`.
public struct RoutedHeader: Equatable, Sendable {
    public static let byteCount = 44
    /// The default TTL for packets a node originates.
    public static let defaultTTL: UInt8 = 64

    /// Overlay hops taken so far.
    public var hops: UInt8
    /// The most hops the packet may take; a node that would exceed it drops the packet.
    public var ttl: UInt8
    public var mode: DeliveryMode
    public var payloadType: PayloadType
    public var source: Address
    public var destination: Address

    public init(hops: UInt8 = 0, ttl: UInt8 = RoutedHeader.defaultTTL, mode: DeliveryMode, payloadType: PayloadType,
                source: Address, destination: Address) {
        self.hops = hops
        self.ttl = ttl
        self.mode = mode
        self.payloadType = payloadType
        self.source = source
        self.destination = destination
    }
}

/// A routed header and its payload bytes.
public struct RoutedPacket: Equatable, Sendable {
    public var header: RoutedHeader
    /// The payload, not interpreted by routers. The buffer is owned by the packet.
    public var payload: ByteBuffer

    public init(header: RoutedHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }

    /// Whether the payload is an application's (data, or data sealed end to end).
    public var isApplicationTraffic: Bool { header.payloadType == .data || header.payloadType == .secure }

    /// The edge message that carries this packet (`EdgeMessage.routed`), encoded into a fresh buffer of exactly
    /// its size with `headroom` bytes free before it and room for `tailroom` after it: headers and payload in
    /// one access (the data path encodes every packet here).
    public func encodedMessage(allocator: ByteBufferAllocator = ByteBufferAllocator(), headroom: Int = 0,
                               tailroom: Int = 0) -> ByteBuffer {
        let size = EdgeMessage.routedOverhead + payload.readableBytes
        var buffer = allocator.buffer(capacity: headroom + size + tailroom)
        if headroom > 0 {
            buffer.moveWriterIndex(to: headroom)
            buffer.moveReaderIndex(to: headroom)
        }
        let header = self.header
        payload.withUnsafeReadableBytes { bytes in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
                RoutedPacket.store(header, version: WireFormat.version, kind: EdgeMessage.Kind.routed.rawValue,
                                   into: raw)
                UnsafeMutableRawBufferPointer(rebasing: raw[EdgeMessage.routedOverhead...]).copyMemory(from: bytes)
                return size
            }
        }
        return buffer
    }

    /// Stores an edge message's `version` and `kind`, then `header`, at the start of `raw`.
    private static func store(_ header: RoutedHeader, version: UInt8, kind: UInt8, into raw: UnsafeMutableRawBufferPointer) {
        raw[0] = version
        raw[1] = kind
        raw[2] = header.hops
        raw[3] = header.ttl
        raw[4] = header.mode.rawValue
        raw[5] = header.payloadType.rawValue
        header.source.store(into: raw, at: 6)
        header.destination.store(into: raw, at: 6 + Address.byteCount)
    }

    /// Writes an edge message's `version` and `kind`, the header, then the payload. The fixed-size part goes in
    /// one write: every packet is encoded here, and each ByteBuffer write costs its own bounds, uniqueness and
    /// exclusivity checks.
    func encode(into buffer: inout ByteBuffer, version: UInt8, kind: UInt8) {
        let header = self.header
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 2 + RoutedHeader.byteCount) { raw in
            RoutedPacket.store(header, version: version, kind: kind, into: raw)
            return 2 + RoutedHeader.byteCount
        }
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    init(from reader: inout WireReader) throws(WireError) {
        let hops: UInt8, ttl: UInt8, mode: DeliveryMode, typeByte: UInt8, source: Address, destination: Address
        if reader.buffer.readableBytes >= RoutedHeader.byteCount {
            // The whole header is there: read in one access (see `encode`), then checked as below.
            let modeByte: UInt8
            (hops, ttl, modeByte, typeByte, source, destination) = reader.buffer.withUnsafeReadableBytes { raw in
                (raw[0], raw[1], raw[2], raw[3], Address(loadingFrom: raw, at: 4),
                 Address(loadingFrom: raw, at: 4 + Address.byteCount))
            }
            reader.buffer.moveReaderIndex(forwardBy: RoutedHeader.byteCount)
            try RoutedHeader.checkHops(hops, ttl: ttl)
            mode = try RoutedHeader.mode(modeByte)
        } else {
            // Short: field by field, so that the error names the first field missing (after the checks of
            // those that are there).
            hops = try reader.u8("hops")
            ttl = try reader.u8("ttl")
            try RoutedHeader.checkHops(hops, ttl: ttl)
            mode = try RoutedHeader.mode(try reader.u8("delivery_mode"))
            typeByte = try reader.u8("payload_type")
            source = try reader.address("source")
            destination = try reader.address("destination")
        }
        header = RoutedHeader(hops: hops, ttl: ttl, mode: mode, payloadType: PayloadType(rawValue: typeByte),
                              source: source, destination: destination)
        payload = reader.buffer.readSlice(length: reader.buffer.readableBytes) ?? ByteBuffer()
    }
}

extension RoutedHeader {
    static func checkHops(_ hops: UInt8, ttl: UInt8) throws(WireError) {
        guard ttl > 0, hops <= ttl else { throw .badHopCount(hops: hops, ttl: ttl) }
    }

    static func mode(_ byte: UInt8) throws(WireError) -> DeliveryMode {
        guard let mode = DeliveryMode(rawValue: byte) else { throw .unknownDeliveryMode(byte) }
        return mode
    }
}

/// Connect-To-Me: "whoever receives this, link to me". Routed to an address; every recipient answers with a
/// `ConnectToMeReply` and starts linking to the requester while the requester links to it (NAT punching).
public struct ConnectToMe: Equatable, Sendable {
    public var token: UInt64
    public var type: ConnectionType
    public var requester: NodeInfo
    /// Set while the requester is not yet in the ring: the node it is leaf-connected to, which passes the
    /// reply on (the ring cannot route to the requester's address yet).
    public var gateway: Address?

    public init(token: UInt64, type: ConnectionType, requester: NodeInfo, gateway: Address?) {
        self.token = token
        self.type = type
        self.requester = requester
        self.gateway = gateway
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(token, endianness: .big)
        buffer.writeShortText(type.name, limit: ConnectionType.maximumLength)
        buffer.writeNodeInfo(requester)
        buffer.writeOptionalAddress(gateway)
        return buffer
    }

    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> ConnectToMe {
        var reader = WireReader(buffer)
        let message = ConnectToMe(token: try reader.u64("token"), type: try reader.connectionType("connection_type"),
                                  requester: try reader.nodeInfo("requester"),
                                  gateway: try reader.optionalAddress("gateway"))
        try reader.expectEnd()
        return message
    }
}

/// The answer to a CTM: who received it, and that node's neighbours.
public struct ConnectToMeReply: Equatable, Sendable {
    public var token: UInt64
    /// The CTM's requester (the reply's final recipient, also when sent via a gateway).
    public var requester: Address
    public var type: ConnectionType
    public var responder: NodeInfo
    public var neighbours: [NodeInfo]

    public init(token: UInt64, requester: Address, type: ConnectionType, responder: NodeInfo, neighbours: [NodeInfo]) {
        self.token = token
        self.requester = requester
        self.type = type
        self.responder = responder
        self.neighbours = Array(neighbours.prefix(WireFormat.maximumNeighbours))
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(token, endianness: .big)
        buffer.writeAddress(requester)
        buffer.writeShortText(type.name, limit: ConnectionType.maximumLength)
        buffer.writeNodeInfo(responder)
        buffer.writeNodeInfos(neighbours)
        return buffer
    }

    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> ConnectToMeReply {
        var reader = WireReader(buffer)
        let message = ConnectToMeReply(token: try reader.u64("token"), requester: try reader.address("requester"),
                                       type: try reader.connectionType("connection_type"),
                                       responder: try reader.nodeInfo("responder"),
                                       neighbours: try reader.nodeInfos("neighbours"))
        try reader.expectEnd()
        return message
    }
}

/// Tells a packet's source that it was not delivered, and why.
public struct RoutingError: Equatable, Sendable {
    public enum Code: UInt8, Sendable, CaseIterable {
        /// No node holds the exact destination address.
        case absentDestination = 1
        /// The packet used up its TTL.
        case ttlExpired = 2
        /// The reporting node had no connection to forward on.
        case noRoute = 3
    }

    public var code: Code
    /// The undelivered packet's destination and payload type.
    public var destination: Address
    public var payloadType: PayloadType
    /// The node that gave up.
    public var reporter: Address

    public init(code: Code, destination: Address, payloadType: PayloadType, reporter: Address) {
        self.code = code
        self.destination = destination
        self.payloadType = payloadType
        self.reporter = reporter
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(code.rawValue)
        buffer.writeAddress(destination)
        buffer.writeInteger(payloadType.rawValue)
        buffer.writeAddress(reporter)
        return buffer
    }

    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> RoutingError {
        var reader = WireReader(buffer)
        let raw = try reader.u8("routing_error_code")
        guard let code = Code(rawValue: raw) else { throw .unknownValue(field: "routing_error_code", value: raw) }
        let message = RoutingError(code: code, destination: try reader.address("destination"),
                                   payloadType: PayloadType(rawValue: try reader.u8("payload_type")),
                                   reporter: try reader.address("reporter"))
        try reader.expectEnd()
        return message
    }
}
