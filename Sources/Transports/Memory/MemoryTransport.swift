/// Names of the `memory` transport: an in-process simulated datagram network (`MemoryNetwork`) for the
/// simulator and tests. The simulator registers its listener factory by closure
/// (`TransportRegistry.register(scheme:factory:)`), since a listener needs the shared network object.
public enum MemoryTransport {
    /// The URI scheme: `memory://<host>:<port>`.
    public static let scheme = "memory"
    /// The simulated connection-oriented transport (think TCP or TLS): see `MemoryNetwork.makeStreamListener`.
    public static let streamScheme = "memory-stream"
}
