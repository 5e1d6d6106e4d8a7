/// Why bytes from the network are not a valid WOW packet. Every parser returns one of these instead of
/// trapping; the node counts each drop by `reason`.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended inside `field`.
    case truncated(field: String)
    /// The packet's version byte is not one this node speaks.
    case badVersion(UInt8)
    /// The packet kind byte is unknown.
    case unknownKind(UInt8)
    /// A routed header names an unknown delivery mode.
    case unknownDeliveryMode(UInt8)
    /// An enumerated field (`field`) holds an unknown value.
    case unknownValue(field: String, value: UInt8)
    /// A length or count in `field` exceeds its limit.
    case tooLong(field: String, length: Int, limit: Int)
    /// `field` holds text that is not valid for it (bad UTF-8, bad URI, bad connection type).
    case invalidText(field: String, reason: String)
    /// Bytes were left over after the last field.
    case trailingBytes(Int)
    /// A whole packet exceeds the maximum packet size.
    case packetTooLarge(Int)
    /// The header's TTL is zero or hops exceed TTL.
    case badHopCount(hops: UInt8, ttl: UInt8)

    /// A short stable name for counters and logs.
    public var reason: String {
        switch self {
        case .truncated: return "truncated"
        case .badVersion: return "bad_version"
        case .unknownKind: return "unknown_kind"
        case .unknownDeliveryMode: return "unknown_delivery_mode"
        case .unknownValue: return "unknown_value"
        case .tooLong: return "too_long"
        case .invalidText: return "invalid_text"
        case .trailingBytes: return "trailing_bytes"
        case .packetTooLarge: return "packet_too_large"
        case .badHopCount: return "bad_hop_count"
        }
    }

    public var description: String {
        switch self {
        case .truncated(let field): return "packet ends inside \(field)"
        case .badVersion(let v): return "unsupported protocol version \(v) (this node speaks \(WireFormat.version))"
        case .unknownKind(let k): return "unknown packet kind 0x\(String(k, radix: 16))"
        case .unknownDeliveryMode(let m): return "unknown delivery mode \(m)"
        case .unknownValue(let field, let value): return "unknown \(field) \(value)"
        case .tooLong(let field, let length, let limit): return "\(field) is \(length), limit \(limit)"
        case .invalidText(let field, let reason): return "\(field) is invalid: \(reason)"
        case .trailingBytes(let n): return "\(n) unexpected bytes after the last field"
        case .packetTooLarge(let n): return "packet of \(n) bytes exceeds \(WireFormat.maximumPacketSize)"
        case .badHopCount(let hops, let ttl): return "hops \(hops) with TTL \(ttl)"
        }
    }
}
