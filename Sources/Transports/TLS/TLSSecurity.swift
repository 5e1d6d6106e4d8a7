import NIOCore
import NIOSSL

/// The TLS layer of the `tls` transport's connections: TLS 1.3 at least, the node's certificate on both sides
/// (as server for inbound connections, as client for outbound ones).
///
/// Peer verification: none (`certificateVerification: .none`). TLS here gives confidentiality against
/// passive observers and makes the traffic look like ordinary TLS on port 443 to firewalls; it does NOT
/// authenticate the peer, so it does not stop an active man in the middle. Authenticating members is the
/// job of the link handshake (the network's membership certificates, the security issue), which runs inside
/// every edge whatever its transport.
struct TLSSecurity: TCPConnectionSecurity {
    let serverContext: NIOSSLContext
    let clientContext: NIOSSLContext

    /// Contexts presenting `certificateChain` (leaf first) with `privateKey`. Throws NIOSSL's error if the key
    /// does not fit the certificate or BoringSSL refuses the configuration.
    init(certificateChain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey) throws {
        let chain = certificateChain.map { NIOSSLCertificateSource.certificate($0) }
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        server.minimumTLSVersion = .tlsv13
        server.certificateVerification = .none
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.certificateVerification = .none
        client.certificateChain = chain
        client.privateKey = .privateKey(privateKey)
        serverContext = try NIOSSLContext(configuration: server)
        clientContext = try NIOSSLContext(configuration: client)
    }

    func makeServerHandler() -> any ChannelHandler {
        TLSAfterFirstBytes(context: serverContext)
    }

    func makeClientHandler() throws -> any ChannelHandler {
        // Peers are IP literals: no server name to send or check.
        try NIOSSLClientHandler(context: clientContext, serverHostname: nil)
    }
}

/// The server side of an inbound `tls` connection, in two steps: nothing until the peer's first bytes, then
/// the TLS handler, put in this handler's place.
///
/// Why: a TLS handler holds ~50 KB from the moment it is added (a 32 KB plaintext buffer, BoringSSL's
/// connection), so a flood of connections that never say anything (`Scripts/tcp-flood.py`) would cost the
/// node tens of MB while they wait for the handshake timeout. A connection that has not spoken costs only its
/// socket and pipeline; one that sends a ClientHello gets the handshake at once, as before.
final class TLSAfterFirstBytes: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let context: NIOSSLContext
    private var isReplaced = false

    init(context: NIOSSLContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isReplaced else { return context.fireChannelRead(data) }
        isReplaced = true
        do {
            // Added after this handler, which then passes the bytes on to it and leaves.
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: self.context), position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
