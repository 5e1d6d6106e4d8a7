import Foundation
import NIOSSL
import WOWKit

/// The `tls` transport: the `tcp` transport's edges inside TLS 1.3 (swift-nio-ssl), at URIs like
/// `tls://198.18.0.1:443`, for networks that let only TLS on port 443 through. The same listener, edges and
/// framing as `tcp` (`TCPEdgeListener` with a `TLSSecurity` layer); an edge is up, and a peer's bytes
/// reach the node, only after the TLS handshake.
///
/// Peer authentication: none here. Certificates are not verified (`certificateVerification: .none`, minimum
/// TLS 1.3), so TLS hides the traffic from passive observers but does not tell who the peer is. The link
/// handshake authenticates members (the security issue's job), inside every edge of every transport.
///
/// Config (all keys optional; unknown keys are rejected):
/// ```yaml
/// tls:
///   listen: "0.0.0.0:443"         # IPv4 or IPv6 literal with port; "[::]:443" for IPv6; port 0 = any free port
///   advertise: ["tls://198.18.0.1:443"]   # URIs peers can reach this node at, listed first
///   connect_timeout_ms: 5000      # how long an outbound connection and its handshake may take
///   certificate_file: /etc/wow/tls.crt    # PEM chain, leaf first; with key_file, or neither:
///   key_file: /etc/wow/tls.key            # without both, a self-signed P-256 certificate is made in memory
///   proxy: "http://user:password@198.18.0.9:3128"   # dial outbound edges through this HTTP proxy (CONNECT);
///                                                   # `none` to ignore HTTPS_PROXY
/// ```
/// Without `proxy`, outbound edges follow `HTTPS_PROXY` / `https_proxy` and `NO_PROXY` (`ProxyPolicy`).
public enum TLSTransport: TransportPlugin {
    /// The URI scheme, also the config name.
    public static let scheme = "tls"

    /// The transport's settings.
    public struct Settings: Decodable, Sendable {
        /// The local address to listen on, `host:port` (IPv6 in brackets). Port 0 takes any free port.
        public var listen: String = "0.0.0.0:443"
        /// URIs this node can be reached at (a port forward, a public address), put first in `localURIs`.
        public var advertise: [TransportURI] = []
        /// How long `createEdge` (connect and TLS handshake) may take before it fails as unreachable; also how
        /// long an inbound connection may take to finish its handshake.
        public var connectTimeoutMilliseconds: Int = 5000
        /// A PEM file with the certificate chain (leaf first). Given with `keyFile`, or neither.
        public var certificateFile: String?
        /// A PEM file with the leaf certificate's private key.
        public var keyFile: String?
        /// An HTTP proxy to dial outbound edges through (`CONNECT`); `.unset` follows `HTTPS_PROXY`, `.direct`
        /// ignores it.
        public var proxy: ProxySetting = .unset

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen, advertise, proxy
            case connectTimeoutMilliseconds = "connect_timeout_ms"
            case certificateFile = "certificate_file"
            case keyFile = "key_file"
        }

        public init(listen: String = "0.0.0.0:443", advertise: [TransportURI] = [], connectTimeoutMilliseconds: Int = 5000,
                    certificateFile: String? = nil, keyFile: String? = nil, proxy: ProxySetting = .unset) {
            self.listen = listen
            self.proxy = proxy
            self.advertise = advertise
            self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }

        public init(from decoder: any Decoder) throws {
            self.init()
            let container = try decoder.settingsContainer(keyedBy: CodingKeys.self)
            listen = try container.decodeListenAddress(forKey: .listen) ?? listen
            advertise = try container.decodeAdvertisedURIs(forKey: .advertise, scheme: TLSTransport.scheme) ?? advertise
            connectTimeoutMilliseconds = try container.decodeConnectTimeout(forKey: .connectTimeoutMilliseconds)
                ?? connectTimeoutMilliseconds
            certificateFile = try container.decodeIfPresent(String.self, forKey: .certificateFile)
            keyFile = try container.decodeIfPresent(String.self, forKey: .keyFile)
            proxy = try container.decodeProxy(forKey: .proxy) ?? proxy
            if (certificateFile == nil) != (keyFile == nil) {
                let given: CodingKeys = certificateFile == nil ? .keyFile : .certificateFile
                throw DecodingError.dataCorruptedError(
                    forKey: given, in: container,
                    debugDescription: "certificate_file and key_file go together: give both (PEM files), or neither for a self-signed certificate made at start")
            }
        }
    }

    /// Makes the node's TLS listener: loads the certificate and key, or makes a self-signed certificate, and
    /// reads the proxy from the settings or the process's environment; it listens in `start`. Needs
    /// `context.eventLoop`. Throws `HTTPProxyError.badEnvironment` for an `HTTPS_PROXY` that is not a proxy URL.
    public static func makeListener(settings: Settings, context: TransportContext) throws -> any EdgeListener {
        try makeListener(settings: settings, context: context, environment: ProcessInfo.processInfo.environment)
    }

    /// `makeListener` with the environment given (tests).
    static func makeListener(settings: Settings, context: TransportContext,
                             environment: [String: String]) throws -> any EdgeListener {
        guard let eventLoop = context.eventLoop else {
            throw TCPTransportError.needsEventLoop(transport: scheme)
        }
        let proxy = try ProxyPolicy(setting: settings.proxy, followsEnvironment: true, environment: environment)
        return try TCPEdgeListener(scheme: scheme, listen: settings.listen, advertise: settings.advertise,
                                   connectTimeoutMilliseconds: settings.connectTimeoutMilliseconds,
                                   security: try security(settings), proxy: proxy, eventLoop: eventLoop,
                                   logger: context.logger)
    }

    /// The TLS layer from the configured files, or with a certificate made now.
    static func security(_ settings: Settings) throws -> TLSSecurity {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        switch (settings.certificateFile, settings.keyFile) {
        case (nil, nil):
            do {
                let made = try TLSSelfSignedCertificate()
                chain = [made.certificate]
                key = made.privateKey
            } catch {
                throw TLSTransportError.badCredentials(reason: "cannot make a self-signed certificate: \(error)")
            }
        case (let certificateFile?, let keyFile?):
            do {
                chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
            } catch {
                throw TLSTransportError.badCertificateFile(certificateFile, reason: "\(error)")
            }
            guard !chain.isEmpty else {
                throw TLSTransportError.badCertificateFile(certificateFile, reason: "no certificate in it")
            }
            do {
                key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
            } catch {
                throw TLSTransportError.badKeyFile(keyFile, reason: "\(error)")
            }
        default:
            throw PluginError.badSettings(
                plugin: scheme, reason: "certificate_file and key_file go together: give both (PEM files), or neither")
        }
        do {
            return try TLSSecurity(certificateChain: chain, privateKey: key)
        } catch {
            throw TLSTransportError.badCredentials(reason: "\(error)")
        }
    }
}
