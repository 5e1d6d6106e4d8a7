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
        NIOSSLServerHandler(context: serverContext)
    }

    func makeClientHandler() throws -> any ChannelHandler {
        // Peers are IP literals: no server name to send or check.
        try NIOSSLClientHandler(context: clientContext, serverHostname: nil)
    }
}
