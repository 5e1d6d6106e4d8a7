import NIOCore

/// Decides how a node answers DNS queries for member names, `NAME.<domain>` (`beta.wow`), on its local
/// resolver address. Pure logic: the UDP server hands it each datagram and carries out the `Outcome`;
/// resolving a member name to its addresses is the node's job, in between `answer` and `reply`.
///
/// The answers are those an authoritative server gives for its zone, so stub and caching resolvers behave:
/// - the domain itself exists (NOERROR, no records), since members live under it; NXDOMAIN there would let a
///   resolver that follows RFC 8020 conclude that no member name exists either;
/// - `NAME.<domain>` goes to the node whatever the type asked for, because only the node knows whether the
///   name exists: NXDOMAIN means the name is unknown for every type (RFC 8020 again), so an HTTPS or MX
///   query for a member must get NOERROR with no records, not NXDOMAIN;
/// - deeper names (`x.beta.wow`), and labels no member name can have, do not exist (NXDOMAIN);
/// - names outside the domain are REFUSED (this is not a recursive resolver), without AA.
///
/// A value type with no mutable state: safe to use from any thread.
public struct DNSResponder: Sendable {
    /// What the UDP server does with one datagram.
    public enum Outcome: Equatable, Sendable {
        /// Send these bytes back to the datagram's source.
        case reply(ByteBuffer)
        /// Resolve the member `name` (one label, lowercased, letters, digits, `-` and `_` only), then send
        /// `reply(to: query, addresses:)` back to the datagram's source.
        case lookup(name: String, query: DNSQuery)
        /// Send nothing and count the drop by `reason.reason`: the datagram is shorter than a header
        /// (`.truncated(field: "header")`), or it is a response (`.notAQuery`). Answering either could feed a
        /// loop between two servers or reflect forged traffic at a victim.
        case drop(reason: DNSMessageError)
    }

    /// The domain's labels, lowercased, leftmost first (`["corp", "wow"]`).
    public let domain: [String]
    /// How long resolvers may cache an answer, in seconds.
    public let ttl: UInt32

    /// A responder for names under `domain` (one or more labels, any case, a trailing dot allowed). An empty
    /// domain makes the responder claim single-label names at the root; a node's configuration should not.
    public init(domain: String = "wow", ttl: UInt32 = 60) {
        self.domain = domain.split(separator: ".").map { label in
            String(decoding: label.utf8.map(DNSMessage.asciiLowercased), as: UTF8.self)
        }
        self.ttl = ttl
    }

    /// What to do with `datagram`, one UDP payload as received (its readable bytes, not consumed): an
    /// immediate reply, a member lookup, or a drop. Malformed queries with a readable header get FORMERR and
    /// opcodes other than QUERY get NOTIMP, each as a bare header; an EDNS version other than 0 gets BADVERS.
    public func answer(_ datagram: ByteBuffer) -> Outcome {
        var headerBytes = datagram
        guard let header = DNSMessage.Header(reading: &headerBytes) else {
            return .drop(reason: .truncated(field: "header"))
        }
        guard !header.isResponse else { return .drop(reason: .notAQuery) }
        guard header.opcode == 0 else {
            return .reply(DNSMessage.headerOnlyResponse(id: header.id, requestFlags: header.flags, code: .notImplemented))
        }
        let query: DNSQuery
        do {
            query = try DNSQuery(parsing: datagram)
        } catch {
            return .reply(DNSMessage.headerOnlyResponse(id: header.id, requestFlags: header.flags, code: .formatError))
        }
        if let edns = query.edns, edns.version != 0 {
            return .reply(DNSMessage.response(to: query, code: .badVersion, ttl: ttl, isAuthoritative: false))
        }

        let question = query.question
        guard question.class == DNSMessage.RecordClass.internet || question.class == DNSMessage.RecordClass.any,
              question.name.count >= domain.count, question.name.suffix(domain.count).elementsEqual(domain) else {
            return .reply(DNSMessage.response(to: query, code: .refused, ttl: ttl, isAuthoritative: false))
        }
        let relativeName = question.name.dropLast(domain.count)
        switch relativeName.count {
        case 0:
            return .reply(DNSMessage.response(to: query, code: .noError, ttl: ttl))
        case 1 where Self.isMemberName(relativeName[relativeName.startIndex]):
            return .lookup(name: relativeName[relativeName.startIndex], query: query)
        default:
            return .reply(DNSMessage.response(to: query, code: .nameError, ttl: ttl))
        }
    }

    /// The reply to a query `answer` handed out as `.lookup`, once the node has resolved its name:
    /// `addresses` nil means no member has the name (NXDOMAIN); otherwise NOERROR with the addresses that
    /// fit the question (IPv4 for A, IPv6 for AAAA, both for ANY, none for any other type), duplicates
    /// removed, order kept. An empty result is NODATA: the name exists, without records of that type.
    public func reply(to query: DNSQuery, addresses: [DNSAddress]?) -> ByteBuffer {
        guard let addresses else { return DNSMessage.response(to: query, code: .nameError, ttl: ttl) }
        let type = query.question.type
        var seen = Set<DNSAddress>()
        let answers = addresses.filter { address in
            (type == DNSMessage.RecordType.any || address.recordType == type) && seen.insert(address).inserted
        }
        return DNSMessage.response(to: query, code: .noError, answers: answers, ttl: ttl)
    }

    /// The reply to a query `answer` handed out as `.lookup` when the node could not find out whether the
    /// name exists (say, the lookup timed out): SERVFAIL, which resolvers retry rather than cache for long.
    public func serverFailure(to query: DNSQuery) -> ByteBuffer {
        DNSMessage.response(to: query, code: .serverFailure, ttl: ttl, isAuthoritative: false)
    }

    /// Whether `label` can be a member name: letters, digits, `-` and `_` (already lowercased).
    static func isMemberName(_ label: String) -> Bool {
        !label.isEmpty && label.utf8.allSatisfy { byte in
            (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || byte == 0x2D || byte == 0x5F
        }
    }
}
