/// How a NodeInfo's URIs travel: their text, with the node addresses in them written as bytes. A relay URI
/// names two addresses in 80 hex digits (its forwarder and the node itself), and a NATed node advertises several:
/// most of its info, which every link reply, Connect-To-Me reply and status message carries for up to six
/// neighbours. UTF-8 never uses the bytes 0xFE and 0xFF, so they mark the substitutions (docs/protocol.md,
/// "NodeInfo"): 0xFE stands for the info's own address in hex, 0xFF followed by 20 bytes for any other address.
/// Only runs of exactly 40 lowercase hex digits (as `Address.hex` writes them) are replaced, so decoding gives
/// back the very text that was encoded.
enum CompactURI {
    static let ownAddress: UInt8 = 0xFE
    static let address: UInt8 = 0xFF

    /// The encoded bytes of `text`, a URI of the node at `own`.
    static func encode(_ text: String, own: Address) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            guard isHexDigit(bytes[index]) else {
                out.append(bytes[index])
                index += 1
                continue
            }
            var end = index
            while end < bytes.count, isHexDigit(bytes[end]) { end += 1 }
            let run = bytes[index..<end]
            if run.count == Address.byteCount * 2, let address = Address(hex: String(decoding: run, as: UTF8.self)) {
                if address == own {
                    out.append(ownAddress)
                } else {
                    out.append(Self.address)
                    out += address.bytes
                }
            } else {
                out += run
            }
            index = end
        }
        return out
    }

    /// The text `bytes` encode for the node at `own`; nil if a 0xFF lacks its 20 bytes.
    static func decode(_ bytes: [UInt8], own: Address) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 2 * Address.byteCount)
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case ownAddress:
                out += own.hex.utf8
                index += 1
            case address:
                guard index + Address.byteCount < bytes.count,
                      let named = Address(bytes: bytes[(index + 1)...(index + Address.byteCount)]) else { return nil }
                out += named.hex.utf8
                index += 1 + Address.byteCount
            default:
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
