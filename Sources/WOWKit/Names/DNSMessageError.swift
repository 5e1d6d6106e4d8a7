/// Why a datagram is not a DNS query this node will answer. `DNSQuery(parsing:)` throws one of these instead
/// of trapping; `DNSResponder` answers FORMERR or drops, and the I/O shell counts each by `reason`.
public enum DNSMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The datagram ended inside `field`.
    case truncated(field: String)
    /// The QR bit is set: the datagram is a response, which must never be answered.
    case notAQuery
    /// QDCOUNT is not 1: every resolver asks exactly one question per query.
    case badQuestionCount(Int)
    /// A length byte announces a label of more than 63 bytes (which also covers the obsolete 0x40 and 0x80
    /// label types, whose first byte reads as a length of 64 to 191).
    case labelTooLong(Int)
    /// A name is longer than 255 bytes on the wire.
    case nameTooLong
    /// The question name holds a compression pointer. A query's question is its first name, so there is
    /// nothing earlier to point to; no resolver sends one, and refusing them rules out pointer loops.
    case compressionPointerInQuestion
    /// The additional section holds more than one OPT record (RFC 6891 section 6.1.1).
    case multipleOPTRecords
    /// An OPT record's owner name is not the root (RFC 6891 section 6.1.2).
    case optOwnerNotRoot

    /// A short stable name for counters and logs.
    public var reason: String {
        switch self {
        case .truncated: return "dns_truncated"
        case .notAQuery: return "dns_not_a_query"
        case .badQuestionCount: return "dns_bad_question_count"
        case .labelTooLong: return "dns_label_too_long"
        case .nameTooLong: return "dns_name_too_long"
        case .compressionPointerInQuestion: return "dns_compressed_question"
        case .multipleOPTRecords: return "dns_multiple_opt"
        case .optOwnerNotRoot: return "dns_opt_owner_not_root"
        }
    }

    public var description: String {
        switch self {
        case .truncated(let field): return "DNS datagram ends inside \(field)"
        case .notAQuery: return "DNS datagram is a response (QR=1), not a query"
        case .badQuestionCount(let count): return "DNS query has \(count) questions, expected 1"
        case .labelTooLong(let length): return "DNS label length \(length) exceeds 63"
        case .nameTooLong: return "DNS name exceeds 255 bytes"
        case .compressionPointerInQuestion: return "DNS question name uses a compression pointer"
        case .multipleOPTRecords: return "DNS query has more than one OPT record"
        case .optOwnerNotRoot: return "DNS OPT record's owner is not the root"
        }
    }
}
