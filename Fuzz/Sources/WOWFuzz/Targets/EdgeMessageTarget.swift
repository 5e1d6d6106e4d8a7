import NIOCore
import WOWKit

/// Every packet an edge receives, parsed as `EdgeMessage` (what the node does with each datagram or stream
/// frame it is handed), and the classifiers transports run before it (punch, fragment, secure frame).
///
/// Checks: `decode` never traps; a message that decodes re-encodes to exactly the input (the wire form is
/// canonical) and decodes again to the same message; its kind is the input's kind byte.
enum EdgeMessageTarget: FuzzTarget {
    static let name = "edge-message"
    static let summary = "EdgeMessage.decode; decode -> encode gives the input back"

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        WireSamples.edgeMessages.map { ($0.0, WireSamples.bytes($0.1.encoded())) }
            + [("punch", WireSamples.bytes(PunchPacket.make())), ("truncated", [1, 1, 0, 0])]
    }

    static func run(_ data: [UInt8]) {
        let buffer = ByteBuffer(bytes: data)
        _ = PunchPacket.matches(buffer)
        _ = FragmentPacket.matches(buffer)
        _ = SecureFrame.isSecureFrame(buffer)
        let message: EdgeMessage
        do {
            message = try EdgeMessage.decode(buffer)
        } catch {
            require(!error.reason.isEmpty, "a wire error without a reason")
            return
        }
        checkRoundTrip(message, data)
    }

    /// `message` was decoded from `data`.
    static func checkRoundTrip(_ message: EdgeMessage, _ data: [UInt8]) {
        require(data.count >= 2 && message.kind.rawValue == data[1], "kind \(message.kind) from kind byte \(data)")
        let encoded = message.encoded()
        require(Array(encoded.readableBytesView) == data, "re-encoding differs: \(data) -> \(message) -> \(Array(encoded.readableBytesView))")
        let roomy = message.encoded(headroom: 14, tailroom: 16)
        require(roomy.readableBytesView.elementsEqual(data), "encoding with headroom differs")
        require((try? EdgeMessage.decode(encoded)) == message, "decode(encode(m)) != m for \(message)")
        _ = message.isConnectionTraffic
    }
}
