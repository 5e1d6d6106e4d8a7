import NIOCore

/// A layer under the framing of a stream transport's connections: TLS for the `tls` transport
/// (`TLSSecurity`); none for `tcp`.
///
/// Its handlers sit first in each connection's pipeline, made fresh per connection, on the listener's event
/// loop. A connection counts as up only when the layer fires `TLSUserEvent.handshakeCompleted`; errors it
/// raises close the connection.
protocol TCPConnectionSecurity: Sendable {
    /// The handler for a connection a peer opened.
    func makeServerHandler() -> any ChannelHandler
    /// The handler for a connection this node opens.
    func makeClientHandler() throws -> any ChannelHandler
}
