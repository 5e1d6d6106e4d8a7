import NIOCore

/// The one question of a DNS query.
public struct DNSQuestion: Equatable, Sendable {
    /// The name's labels, first (leftmost) first, ASCII-lowercased (DNS compares names case-insensitively);
    /// the root is no labels. Bytes that are not UTF-8 read as U+FFFD, which no member name contains.
    public let name: [String]
    /// QTYPE: `DNSMessage.RecordType.a`, `.aaaa`, `.any`, or anything else.
    public let type: UInt16
    /// QCLASS: `DNSMessage.RecordClass.internet` in practice.
    public let `class`: UInt16
    /// The name exactly as it arrived, length bytes and terminating zero included, so the response echoes the
    /// client's capitalisation: resolvers that randomise it (DNS 0x20) reject an answer that does not.
    public let wireName: ByteBuffer

    /// Reads a question at the reader index. Refuses compression pointers (see
    /// `DNSMessageError.compressionPointerInQuestion`), so reading is one bounded pass forward.
    init(reading buffer: inout ByteBuffer) throws(DNSMessageError) {
        var cursor = buffer
        var labels: [String] = []
        var wireLength = 1  // the terminating zero
        readLabels: while true {
            guard let length = cursor.readInteger(as: UInt8.self) else { throw .truncated(field: "question name") }
            switch length {
            case 0:
                break readLabels
            case 0xC0...0xFF:
                throw .compressionPointerInQuestion
            case 64...0xBF:
                throw .labelTooLong(Int(length))
            default:
                wireLength += 1 + Int(length)
                guard wireLength <= DNSMessage.maximumNameLength else { throw .nameTooLong }
                guard let label = cursor.readBytes(length: Int(length)) else { throw .truncated(field: "question name") }
                labels.append(String(decoding: label.map(DNSMessage.asciiLowercased), as: UTF8.self))
            }
        }
        guard let wireName = buffer.readSlice(length: cursor.readerIndex - buffer.readerIndex) else {
            throw .truncated(field: "question name")
        }
        guard let type = buffer.readInteger(as: UInt16.self) else { throw .truncated(field: "question type") }
        guard let qclass = buffer.readInteger(as: UInt16.self) else { throw .truncated(field: "question class") }
        self.name = labels
        self.type = type
        self.class = qclass
        self.wireName = wireName
    }
}

/// A DNS query read from one UDP datagram: a header, exactly one question, and optionally an EDNS OPT
/// record. Records in the answer and authority sections (which queries do not carry) and additional records
/// other than OPT are skipped, not interpreted.
public struct DNSQuery: Equatable, Sendable {
    /// What the client's OPT record (RFC 6891) says about it.
    public struct EDNS: Equatable, Sendable {
        /// The largest UDP response the client accepts.
        public let udpPayloadSize: UInt16
        /// The EDNS version the client speaks; this responder speaks only 0.
        public let version: UInt8
        /// The DO bit: the client wants DNSSEC records (there are none here, but the bit is echoed).
        public let dnssecOK: Bool
    }

    /// The id the response must carry.
    public let id: UInt16
    /// The header's flags word as received (QR=0, opcode, RD, ...).
    public let flags: UInt16
    /// The question.
    public let question: DNSQuestion
    /// The client's EDNS parameters; nil when the query has no OPT record.
    public let edns: EDNS?

    /// The kind of query; 0 is a standard query, the only one answered.
    public var opcode: UInt8 { UInt8(truncatingIfNeeded: (flags & DNSMessage.Flag.opcodeMask) >> 11) }
    /// The RD bit, which the response copies.
    public var recursionDesired: Bool { flags & DNSMessage.Flag.recursionDesired != 0 }

    /// Parses `datagram` (its readable bytes, which are not consumed). Throws `.truncated(field: "header")`
    /// for fewer than 12 bytes, `.notAQuery` when QR=1, `.badQuestionCount` unless QDCOUNT is 1, and the
    /// specific error for any malformed name or record. Bytes after the last record are ignored. Any opcode
    /// is parsed; deciding what to answer is `DNSResponder`'s job.
    public init(parsing datagram: ByteBuffer) throws(DNSMessageError) {
        var buffer = datagram
        guard let header = DNSMessage.Header(reading: &buffer) else { throw .truncated(field: "header") }
        guard !header.isResponse else { throw .notAQuery }
        guard header.questionCount == 1 else { throw .badQuestionCount(Int(header.questionCount)) }
        let question = try DNSQuestion(reading: &buffer)

        // Each record takes at least 11 bytes, so even a count of 65535 ends at the datagram's end.
        for _ in 0..<(Int(header.answerCount) + Int(header.authorityCount)) {
            _ = try Self.readRecord(from: &buffer)
        }
        var edns: EDNS?
        for _ in 0..<header.additionalCount {
            let record = try Self.readRecord(from: &buffer)
            guard record.type == DNSMessage.RecordType.opt else { continue }
            guard record.ownerIsRoot else { throw .optOwnerNotRoot }
            guard edns == nil else { throw .multipleOPTRecords }
            edns = EDNS(udpPayloadSize: record.class,
                        version: UInt8(truncatingIfNeeded: record.ttl >> 16),
                        dnssecOK: record.ttl & 0x8000 != 0)
        }
        self.id = header.id
        self.flags = header.flags
        self.question = question
        self.edns = edns
    }

    /// Reads past one resource record, returning the fields an OPT record puts to use.
    private static func readRecord(from buffer: inout ByteBuffer)
        throws(DNSMessageError) -> (ownerIsRoot: Bool, type: UInt16, class: UInt16, ttl: UInt32) {
        let ownerIsRoot = try skipName(in: &buffer)
        guard let type = buffer.readInteger(as: UInt16.self),
              let rclass = buffer.readInteger(as: UInt16.self),
              let ttl = buffer.readInteger(as: UInt32.self),
              let dataLength = buffer.readInteger(as: UInt16.self) else { throw .truncated(field: "record header") }
        guard buffer.readableBytes >= Int(dataLength) else { throw .truncated(field: "record data") }
        buffer.moveReaderIndex(forwardBy: Int(dataLength))
        return (ownerIsRoot, type, rclass, ttl)
    }

    /// Reads past a record's owner name, returning whether it is the root. Compression is legal here; a
    /// pointer ends the name and is never followed (skipping needs only its two bytes), so no pointer can
    /// loop or reach outside the datagram.
    private static func skipName(in buffer: inout ByteBuffer) throws(DNSMessageError) -> Bool {
        var wireLength = 1  // the terminating zero or the pointer
        while true {
            guard let length = buffer.readInteger(as: UInt8.self) else { throw .truncated(field: "record name") }
            switch length {
            case 0:
                return wireLength == 1
            case 0xC0...0xFF:
                guard buffer.readInteger(as: UInt8.self) != nil else { throw .truncated(field: "record name") }
                return false
            case 64...0xBF:
                throw .labelTooLong(Int(length))
            default:
                wireLength += 1 + Int(length)
                guard wireLength <= DNSMessage.maximumNameLength else { throw .nameTooLong }
                guard buffer.readableBytes >= Int(length) else { throw .truncated(field: "record name") }
                buffer.moveReaderIndex(forwardBy: Int(length))
            }
        }
    }
}
