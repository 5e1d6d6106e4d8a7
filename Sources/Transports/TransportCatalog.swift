import WOWKit

/// The transports that ship with WOW, for registering in one call: udp, tcp, tls and relay (which runs over
/// the others). (`memory` is not among them: it needs the simulator's network object and is registered by
/// the simulator.)
public enum TransportCatalog {
    public static func registerTransports(in registry: inout TransportRegistry) {
        registry.register(UDPTransport.self)
        registry.register(TCPTransport.self)
        registry.register(TLSTransport.self)
        registry.register(RelayTransport.self)
    }
}
