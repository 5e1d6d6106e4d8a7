import WOWKit

extension IPEndpoint {
    /// `udp://198.18.0.1:4000` or `udp://[::1]:4000`.
    var udpURI: TransportURI {
        // The text is printable ASCII well under 255 bytes, so this cannot fail; the fallback only keeps `!` out.
        uri(scheme: UDPTransport.scheme) ?? IPEndpoint.unknownUDPURI
    }

    private static let unknownUDPURI: TransportURI = {
        do { return try TransportURI("udp://0.0.0.0:0") } catch { preconditionFailure("constant URI: \(error)") }
    }()
}
