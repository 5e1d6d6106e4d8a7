import NIOCore

/// The DNS message format (RFC 1035 section 4, EDNS from RFC 6891) as far as a node needs it to answer
/// queries for member names: the constants, the fixed header, and the response encoder. `DNSQuery` parses
/// the query; `DNSResponder` decides the answer. No I/O: bytes in, bytes out.
public enum DNSMessage {
    /// The size of the fixed header.
    public static let headerSize = 12
    /// The largest response sent to a client without EDNS (RFC 1035 section 4.2.1).
    public static let classicPayloadLimit = 512
    /// The UDP payload size this responder advertises in its OPT record and the most it sends whatever the
    /// client advertises: the DNS Flag Day 2020 value, which fits in a 1280-byte IPv6 path unfragmented.
    public static let ednsPayloadLimit = 1232
    /// A name's longest wire form, length bytes and the terminating zero included (RFC 1035 section 2.3.4).
    static let maximumNameLength = 255

    /// The record types the responder distinguishes.
    public enum RecordType {
        public static let a: UInt16 = 1
        public static let aaaa: UInt16 = 28
        public static let opt: UInt16 = 41
        /// QTYPE `*`: every record the name has.
        public static let any: UInt16 = 255
    }

    /// The classes the responder distinguishes.
    public enum RecordClass {
        public static let internet: UInt16 = 1
        /// QCLASS `*`.
        public static let any: UInt16 = 255
    }

    /// RCODE values a response carries. `badVersion` is an extended code (RFC 6891): its high bits travel in
    /// the OPT record, so it is only sent to a query that had one.
    public enum ResponseCode: UInt16, Sendable {
        case noError = 0
        case formatError = 1
        case serverFailure = 2
        case nameError = 3
        case notImplemented = 4
        case refused = 5
        case badVersion = 16
    }

    /// Bits of the header's flags word.
    enum Flag {
        static let response: UInt16 = 0x8000
        static let opcodeMask: UInt16 = 0x7800
        static let authoritative: UInt16 = 0x0400
        static let truncated: UInt16 = 0x0200
        static let recursionDesired: UInt16 = 0x0100
        static let responseCodeMask: UInt16 = 0x000F
    }

    /// DNS names compare case-insensitively in ASCII only (RFC 4343); other bytes stay as they are.
    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
    }

    /// The fixed 12-byte header.
    struct Header: Equatable, Sendable {
        var id: UInt16
        var flags: UInt16
        var questionCount: UInt16
        var answerCount: UInt16
        var authorityCount: UInt16
        var additionalCount: UInt16

        var isResponse: Bool { flags & Flag.response != 0 }
        var opcode: UInt8 { UInt8(truncatingIfNeeded: (flags & Flag.opcodeMask) >> 11) }

        /// Reads the header at the reader index; nil (and nothing consumed) when fewer than 12 bytes remain.
        init?(reading buffer: inout ByteBuffer) {
            guard buffer.readableBytes >= DNSMessage.headerSize,
                  let id = buffer.readInteger(as: UInt16.self),
                  let flags = buffer.readInteger(as: UInt16.self),
                  let questionCount = buffer.readInteger(as: UInt16.self),
                  let answerCount = buffer.readInteger(as: UInt16.self),
                  let authorityCount = buffer.readInteger(as: UInt16.self),
                  let additionalCount = buffer.readInteger(as: UInt16.self) else { return nil }
            self.id = id
            self.flags = flags
            self.questionCount = questionCount
            self.answerCount = answerCount
            self.authorityCount = authorityCount
            self.additionalCount = additionalCount
        }
    }

    /// The response to `query`: the query's id, QR=1, its opcode and RD, AA as given, RA=0, `code`, the
    /// question echoed byte for byte (a resolver using 0x20 case randomisation checks it), then one A or AAAA
    /// record per address in `answers`, in order, each named by a pointer to the question name (0xC00C) and
    /// living `ttl` seconds. When the query had an OPT record the response carries one too (RFC 6891
    /// section 7), advertising `ednsPayloadLimit` and copying the DO bit.
    ///
    /// The caller chooses the answers (the right type for the question); this only encodes. A response that
    /// would exceed what the client can take (512 bytes without EDNS, else its advertised size capped at
    /// `ednsPayloadLimit`) is sent with TC=1 and no answers, so the client retries over TCP.
    public static func response(to query: DNSQuery, code: ResponseCode, answers: [DNSAddress] = [],
                                ttl: UInt32, isAuthoritative: Bool = true,
                                allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        let questionSize = query.question.wireName.readableBytes + 4
        let optSize = query.edns == nil ? 0 : 11
        let answersSize = answers.reduce(0) { $0 + 12 + $1.recordDataLength }
        let limit = query.edns.map { min(max(Int($0.udpPayloadSize), classicPayloadLimit), ednsPayloadLimit) }
            ?? classicPayloadLimit
        let isTruncated = headerSize + questionSize + answersSize + optSize > limit
        let sentAnswers = isTruncated ? [] : answers

        var flags = responseFlags(requestFlags: query.flags, code: code, isAuthoritative: isAuthoritative)
        if isTruncated { flags |= Flag.truncated }
        var buffer = allocator.buffer(capacity: headerSize + questionSize + (isTruncated ? 0 : answersSize) + optSize)
        buffer.writeInteger(query.id)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(1))
        buffer.writeInteger(UInt16(sentAnswers.count))
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt16(optSize == 0 ? 0 : 1))

        buffer.writeImmutableBuffer(query.question.wireName)
        buffer.writeInteger(query.question.type)
        buffer.writeInteger(query.question.class)

        for address in sentAnswers {
            // The question name always starts right after the header, at offset 12.
            buffer.writeInteger(UInt16(0xC000 | headerSize))
            buffer.writeInteger(address.recordType)
            buffer.writeInteger(RecordClass.internet)
            buffer.writeInteger(ttl)
            buffer.writeInteger(UInt16(address.recordDataLength))
            address.writeRecordData(into: &buffer)
        }

        if let edns = query.edns {
            buffer.writeInteger(UInt8(0))  // owner: the root
            buffer.writeInteger(RecordType.opt)
            buffer.writeInteger(UInt16(ednsPayloadLimit))  // the CLASS field carries the payload size
            // TTL field: extended RCODE (high 8 bits of the 12), version 0, then the DO bit.
            buffer.writeInteger(UInt8(truncatingIfNeeded: code.rawValue >> 4))
            buffer.writeInteger(UInt8(0))
            buffer.writeInteger(UInt16(edns.dnssecOK ? 0x8000 : 0))
            buffer.writeInteger(UInt16(0))  // no options
        }
        return buffer
    }

    /// A response that is only a header (all counts zero): for FORMERR and NOTIMP, where the question is
    /// unreadable or belongs to an opcode whose sections this responder does not parse. Copies `id`, the
    /// opcode and RD from the request's flags; AA=0, since the responder vouches for no name here.
    public static func headerOnlyResponse(id: UInt16, requestFlags: UInt16, code: ResponseCode,
                                          allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSize)
        buffer.writeInteger(id)
        buffer.writeInteger(responseFlags(requestFlags: requestFlags, code: code, isAuthoritative: false))
        buffer.writeRepeatingByte(0, count: 8)
        return buffer
    }

    private static func responseFlags(requestFlags: UInt16, code: ResponseCode, isAuthoritative: Bool) -> UInt16 {
        Flag.response
            | requestFlags & (Flag.opcodeMask | Flag.recursionDesired)
            | (isAuthoritative ? Flag.authoritative : 0)
            | code.rawValue & Flag.responseCodeMask
    }
}
