import NIOCore

/// The name service's routed payloads (docs/operations.md, "Names"):
/// - `name_put` (0x09): `replica:u8 record`. Routed in `nearest` mode to the name's ring key; the node that
///   gets it keeps the record and passes it to its two ring neighbours as replicas (`replica` = 1, kept and
///   not passed on).
/// - `name_get` (0x0A): `token:u64 name_length:u8 name`, routed in `nearest` mode to the name's ring key.
/// - `name_answer` (0x0B): `token:u64 found:u8 record?`, routed back to the asker in `exact` mode.
public enum NameMessage: Equatable, Sendable {
    case put(NameRecord, isReplica: Bool)
    case get(token: UInt64, name: String)
    case answer(token: UInt64, record: NameRecord?)

    public var payloadType: PayloadType {
        switch self {
        case .put: return .namePut
        case .get: return .nameGet
        case .answer: return .nameAnswer
        }
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        switch self {
        case .put(let record, let isReplica):
            buffer.writeInteger(UInt8(isReplica ? 1 : 0))
            record.encode(into: &buffer)
        case .get(let token, let name):
            buffer.writeInteger(token, endianness: .big)
            buffer.writeShortText(name, limit: MembershipCertificate.maximumNameLength)
        case .answer(let token, let record):
            buffer.writeInteger(token, endianness: .big)
            buffer.writeInteger(UInt8(record == nil ? 0 : 1))
            record?.encode(into: &buffer)
        }
        return buffer
    }

    /// Decodes the payload of a routed packet of type `type` (one of the three).
    public static func decode(_ buffer: ByteBuffer, type: PayloadType) throws(WireError) -> NameMessage {
        var reader = WireReader(buffer)
        let message: NameMessage
        switch type {
        case .namePut:
            let replica = try reader.u8("name_put replica")
            guard replica <= 1 else { throw .unknownValue(field: "name_put replica", value: replica) }
            message = .put(try NameRecord(from: &reader), isReplica: replica == 1)
        case .nameGet:
            message = .get(token: try reader.u64("name_get token"),
                           name: try reader.text("name_get name", limit: MembershipCertificate.maximumNameLength))
        default:
            let token = try reader.u64("name_answer token")
            let found = try reader.u8("name_answer found")
            guard found <= 1 else { throw .unknownValue(field: "name_answer found", value: found) }
            message = .answer(token: token, record: found == 1 ? try NameRecord(from: &reader) : nil)
        }
        try reader.expectEnd()
        return message
    }
}
