import NIOCore
import WOWKit

/// Routed packets and their payloads, as a node handles what reaches it: the routed header, then by payload
/// type a Connect-To-Me, a CTM reply, a routing error, or a tunnel frame whose inner frame is again an edge
/// message (what a relay edge hands its node), an IP packet (the virtual network), an echo (`wow ping`), or a
/// name service message (a record in it is checked as a storer checks it: believed only if genuine).
///
/// The input is the routed packet after its version and kind bytes (the harness puts them in front), so
/// every input is a routed packet to the fuzzer's eye. Checks: every decoder is total; each payload that
/// decodes re-encodes to exactly its bytes and decodes again to the same value; `TunnelFrame.via(in:)`
/// agrees with `decode`.
enum RoutedPacketTarget: FuzzTarget {
    static let name = "routed-packet"
    static let summary = "routed header, CTM, CTM reply, routing error, tunnel frame (+ inner edge message)"

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        WireSamples.routedPackets.map { ($0.0, Array(WireSamples.bytes(EdgeMessage.routed($0.1).encoded()).dropFirst(2))) }
    }

    static func run(_ data: [UInt8]) {
        let whole = [WireFormat.version, EdgeMessage.Kind.routed.rawValue] + data
        guard case .routed(let packet)? = try? EdgeMessage.decode(ByteBuffer(bytes: whole)) else { return }
        EdgeMessageTarget.checkRoundTrip(.routed(packet), whole)
        require(packet.header.ttl > 0 && packet.header.hops <= packet.header.ttl, "accepted hops/ttl \(packet.header)")
        let payload = packet.payload
        let bytes = Array(payload.readableBytesView)
        switch packet.header.payloadType {
        case .connectToMe:
            if let ctm = try? ConnectToMe.decode(payload) {
                require(WireSamples.bytes(ctm.encoded()) == bytes, "CTM re-encoding differs")
                require((try? ConnectToMe.decode(ctm.encoded())) == ctm, "CTM round trip")
            }
        case .connectToMeReply:
            if let reply = try? ConnectToMeReply.decode(payload) {
                require(WireSamples.bytes(reply.encoded()) == bytes, "CTM reply re-encoding differs")
                require((try? ConnectToMeReply.decode(reply.encoded())) == reply, "CTM reply round trip")
            }
        case .routingError:
            if let error = try? RoutingError.decode(payload) {
                require(WireSamples.bytes(error.encoded()) == bytes, "routing error re-encoding differs")
                require((try? RoutingError.decode(error.encoded())) == error, "routing error round trip")
            }
        case .tunnel:
            let via = TunnelFrame.via(in: payload)
            guard let frame = try? TunnelFrame.decode(payload) else {
                require(bytes.count < TunnelFrame.overhead, "a tunnel frame of \(bytes.count) bytes refused")
                return
            }
            require(via == frame.via, "via(in:) \(String(describing: via)) but decode \(frame.via)")
            require(WireSamples.bytes(frame.encoded()) == bytes, "tunnel frame re-encoding differs")
            require((try? TunnelFrame.decode(frame.encoded())) == frame, "tunnel frame round trip")
            let inner = frame.frame
            if !SecureFrame.isSecureFrame(inner), let message = try? EdgeMessage.decode(inner) {
                EdgeMessageTarget.checkRoundTrip(message, Array(inner.readableBytesView))
            }
        case .data:
            _ = IPv4Packet.header(of: payload)
        case .echoRequest, .echoReply:
            guard let echo = try? Echo.decode(payload) else {
                return require(bytes.count != Echo.byteCount, "a \(Echo.byteCount)-byte echo refused")
            }
            require(WireSamples.bytes(echo.encoded()) == bytes, "echo re-encoding differs")
        case .namePut, .nameGet, .nameAnswer:
            guard let message = try? NameMessage.decode(payload, type: packet.header.payloadType) else { return }
            require(WireSamples.bytes(message.encoded()) == bytes, "name message re-encoding differs")
            require((try? NameMessage.decode(message.encoded(), type: message.payloadType)) == message, "name message round trip")
            let record: NameRecord?
            switch message {
            case .put(let put, _): record = put
            case .answer(_, let answer): record = answer
            case .get: record = nil
            }
            if let record, record.refusal(by: FuzzFixtures.bobRevokingDave, at: FuzzFixtures.unixTime) == nil {
                require(FuzzFixtures.genuineCertificates.contains(record.certificate.encoded),
                        "believed a name record whose certificate the authority never signed")
                require(record.certificate != FuzzFixtures.dave.certificate, "believed the revoked member's name record")
            }
        default:
            _ = SecureFrame.isSecureFrame(payload)
        }
    }
}
