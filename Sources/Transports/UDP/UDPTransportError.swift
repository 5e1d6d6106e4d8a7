/// Why the `udp` transport could not be set up.
public enum UDPTransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The node has no event loop (the simulator): use the `memory` transport there.
    case needsEventLoop
    /// `listen` is not an IP literal with a port.
    case badListenAddress(String, reason: String)
    /// The socket could not be bound; `reason` is the operating system's (e.g. "Address already in use").
    case bindFailed(address: String, reason: String)

    public var description: String {
        switch self {
        case .needsEventLoop:
            return "the udp transport needs an event loop (real node)"
        case .badListenAddress(let text, let reason):
            return "udp listen address '\(text)': \(reason)"
        case .bindFailed(let address, let reason):
            return "cannot bind the udp socket to \(address): \(reason)"
        }
    }
}
