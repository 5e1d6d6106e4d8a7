import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A certificate made in memory for a `tls` listener given no `certificate_file`/`key_file`: self-signed,
/// with a fresh P-256 key (swift-crypto), signed with ECDSA-SHA256 (swift-certificates).
///
/// Peers do not verify certificates (see `TLSSecurity`), so its names and dates matter only to people
/// looking at the traffic; it is valid from a day before it is made (clock skew) for ten years.
struct TLSSelfSignedCertificate {
    let certificate: NIOSSLCertificate
    let privateKey: NIOSSLPrivateKey
    /// The certificate and key in PEM (for tests and for writing them out).
    let certificatePEM: String
    let privateKeyPEM: String

    init(commonName: String = "wow node", now: Date = Date()) throws {
        let key = P256.Signing.PrivateKey()
        let issuerKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName(commonName)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: issuerKey.publicKey,
            notValidBefore: now.addingTimeInterval(-24 * 3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: issuerKey)
        certificatePEM = try certificate.serializeAsPEM().pemString
        privateKeyPEM = key.pemRepresentation
        self.certificate = try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem)
        self.privateKey = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
    }
}
