import NIOCore

/// An overlay echo (`wow ping`): the payload of `echo_request` and `echo_reply` routed packets,
/// `token:u64 sequence:u32 request_hops:u8`. The requester matches a reply to its request by token; the
/// replier copies the token and sequence and says in `request_hops` how many hops the request took (the
/// reply's own header counts the way back).
public struct Echo: Equatable, Sendable {
    public static let byteCount = 13

    public var token: UInt64
    public var sequence: UInt32
    /// Hops the request took; 0 in a request.
    public var requestHops: UInt8

    public init(token: UInt64, sequence: UInt32, requestHops: UInt8 = 0) {
        self.token = token
        self.sequence = sequence
        self.requestHops = requestHops
    }

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Echo.byteCount)
        buffer.writeInteger(token, endianness: .big)
        buffer.writeInteger(sequence, endianness: .big)
        buffer.writeInteger(requestHops)
        return buffer
    }

    public static func decode(_ buffer: ByteBuffer) throws(WireError) -> Echo {
        var reader = WireReader(buffer)
        let echo = Echo(token: try reader.u64("echo_token"), sequence: try reader.u32("echo_sequence"),
                        requestHops: try reader.u8("echo_request_hops"))
        try reader.expectEnd()
        return echo
    }
}
