import NIOCore

/// An address a DNS answer carries: IPv4 for an A record, IPv6 for AAAA. Fixed-width values, so no answer can
/// hold an address of the wrong length.
public enum DNSAddress: Hashable, Sendable {
    /// An IPv4 address in network byte order, as one number (like `VirtualIP.ipv4`).
    case v4(UInt32)
    /// An IPv6 address in network byte order: its first eight bytes, then its last eight.
    case v6(high: UInt64, low: UInt64)

    /// A member's virtual address.
    public init(_ ip: VirtualIP) {
        if let ipv4 = ip.ipv4 { self = .v4(ipv4) } else { self = .v6(high: ip.high, low: ip.low) }
    }

    /// The address whose bytes, most significant first, are `bytes`: 4 for IPv4, 16 for IPv6; nil otherwise.
    public init?(bytes: [UInt8]) {
        func number<T: FixedWidthInteger>(_ slice: ArraySlice<UInt8>) -> T {
            slice.reduce(0) { $0 << 8 | T($1) }
        }
        switch bytes.count {
        case 4: self = .v4(number(bytes[0..<4]))
        case 16: self = .v6(high: number(bytes[0..<8]), low: number(bytes[8..<16]))
        default: return nil
        }
    }

    /// The record type that carries this address.
    var recordType: UInt16 {
        switch self {
        case .v4: return DNSMessage.RecordType.a
        case .v6: return DNSMessage.RecordType.aaaa
        }
    }

    /// RDLENGTH: 4 or 16.
    var recordDataLength: Int {
        switch self {
        case .v4: return 4
        case .v6: return 16
        }
    }

    func writeRecordData(into buffer: inout ByteBuffer) {
        switch self {
        case .v4(let value):
            buffer.writeInteger(value)
        case .v6(let high, let low):
            buffer.writeInteger(high)
            buffer.writeInteger(low)
        }
    }
}
