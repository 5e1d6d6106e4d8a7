import NIOCore
import WOWKit

/// DNS queries as `wow run --dns` receives them: `DNSResponder.answer`, and for a member name the replies the
/// node can give (found with an address, found without, unknown, no answer in time).
///
/// Checks: nothing but a datagram shorter than a header or a response is dropped; every reply carries the
/// query's id, is a response, and fits the largest payload the responder ever sends (1,232 bytes).
enum DNSQueryTarget: FuzzTarget {
    static let name = "dns-query"
    static let summary = "DNSResponder.answer + replies: ids kept, responses only, bounded size, drops only of non-queries"

    static let responder = DNSResponder(domain: "wow")

    static func run(_ data: [UInt8]) {
        switch responder.answer(ByteBuffer(bytes: data)) {
        case .drop:
            require(data.count < 12 || data[2] & 0x80 != 0, "dropped a query with a header")
        case .reply(let reply):
            check(reply, answering: data)
        case .lookup(let name, let query):
            require(!name.isEmpty && name == name.lowercased(), "looked up '\(name)'")
            for addresses: [DNSAddress]? in [nil, [], [DNSAddress(VirtualIP(0x6440_0002))]] {
                check(responder.reply(to: query, addresses: addresses), answering: data)
            }
            check(responder.serverFailure(to: query), answering: data)
        }
    }

    private static func check(_ reply: ByteBuffer, answering query: [UInt8]) {
        let bytes = Array(reply.readableBytesView)
        require(bytes.count >= 12 && bytes.count <= DNSMessage.ednsPayloadLimit, "a reply of \(bytes.count) bytes")
        require(bytes[0] == query[0] && bytes[1] == query[1], "the reply's id differs from the query's")
        require(bytes[2] & 0x80 != 0, "a reply that is no response")
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func query(_ labels: [String], type: UInt16, edns: Bool) -> [UInt8] {
            var bytes: [UInt8] = [0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]
            for label in labels { bytes += [UInt8(label.utf8.count)] + Array(label.utf8) }
            bytes += [0, UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
            if edns { bytes += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0] }
            return bytes
        }
        return [
            ("a", query(["beta", "wow"], type: 1, edns: true)),
            ("aaaa", query(["BeTa", "WoW"], type: 28, edns: false)),
            ("any", query(["alpha", "wow"], type: 255, edns: true)),
            ("outside", query(["example", "com"], type: 1, edns: false)),
            ("domain", query(["wow"], type: 6, edns: true)),
        ]
    }
}
