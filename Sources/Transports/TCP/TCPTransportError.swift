/// Why a stream transport (`tcp` or `tls`) could not be set up.
public enum TCPTransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The node has no event loop (the simulator): use the `memory` transport there.
    case needsEventLoop(transport: String)
    /// `listen` is not an IP literal with a port.
    case badListenAddress(transport: String, String, reason: String)
    /// The listening socket could not be bound; `reason` is the operating system's (e.g. "Address already in
    /// use").
    case bindFailed(transport: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .needsEventLoop(let transport):
            return "the \(transport) transport needs an event loop (a real node); the simulator uses the memory transport"
        case .badListenAddress(let transport, let text, let reason):
            return "\(transport) listen address '\(text)': \(reason)"
        case .bindFailed(let transport, let address, let reason):
            return "cannot listen for \(transport) connections on \(address): \(reason)"
        }
    }
}
