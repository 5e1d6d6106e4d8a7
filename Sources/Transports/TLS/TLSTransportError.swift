/// Why the `tls` transport could not load its certificate or key.
public enum TLSTransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `certificate_file` cannot be read or holds no PEM certificate.
    case badCertificateFile(String, reason: String)
    /// `key_file` cannot be read or holds no PEM private key.
    case badKeyFile(String, reason: String)
    /// The certificate and key do not make a TLS configuration (e.g. the key is not the certificate's), or
    /// the self-signed certificate could not be made.
    case badCredentials(reason: String)

    public var description: String {
        switch self {
        case .badCertificateFile(let file, let reason):
            return "tls certificate_file '\(file)': \(reason); give a PEM certificate (chain, leaf first)"
        case .badKeyFile(let file, let reason):
            return "tls key_file '\(file)': \(reason); give the certificate's PEM private key"
        case .badCredentials(let reason):
            return "tls certificate and key: \(reason)"
        }
    }
}
