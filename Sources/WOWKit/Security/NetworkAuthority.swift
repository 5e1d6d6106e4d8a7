import Crypto
import NIOCore

/// The public half of a network's certificate authority (`ca.crt`): which network it is and the key that
/// signs its membership certificates. Every node holds a copy.
///
/// Wire form: `format:u8 network:16 name:text public_key:32 created:u64`.
public struct NetworkAuthority: Equatable, Sendable {
    public static let formatVersion: UInt8 = 1
    public var network: NetworkID
    public var name: String
    /// Ed25519, raw 32 bytes.
    public var publicKey: [UInt8]
    /// Seconds since 1970 when the authority was created.
    public var createdAt: Int64

    public init(network: NetworkID, name: String, publicKey: [UInt8], createdAt: Int64) {
        self.network = network
        self.name = name
        self.publicKey = publicKey
        self.createdAt = createdAt
    }

    public var encoded: [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(NetworkAuthority.formatVersion)
        buffer.writeBytes(network.bytes)
        buffer.writeShortText(name, limit: MembershipCertificate.maximumNameLength)
        buffer.writeBytes(publicKey)
        buffer.writeInteger(UInt64(bitPattern: createdAt), endianness: .big)
        return Array(buffer.readableBytesView)
    }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> NetworkAuthority {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        return try read(from: &reader, end: true)
    }

    static func read(from reader: inout WireReader, end: Bool) throws(WireError) -> NetworkAuthority {
        let format = try reader.u8("authority format")
        guard format == formatVersion else { throw .unknownValue(field: "authority format", value: format) }
        let network = NetworkID(bytes: try reader.bytes("authority network", count: NetworkID.byteCount))!
        let name = try reader.text("authority name", limit: MembershipCertificate.maximumNameLength)
        let key = try reader.bytes("authority public_key", count: 32)
        let created = Int64(bitPattern: try reader.u64("authority created"))
        if end { try reader.expectEnd() }
        return NetworkAuthority(network: network, name: name, publicKey: key, createdAt: created)
    }
}

/// A network's certificate authority with its private key (`ca.key`, kept offline where possible): it
/// issues membership certificates.
public struct NetworkAuthorityKey: Sendable {
    public let authority: NetworkAuthority
    let privateKey: Curve25519.Signing.PrivateKey

    /// A new network: a fresh id and key from the system's cryptographic generator.
    public static func create(name: String, now: Int64) -> NetworkAuthorityKey {
        let key = Curve25519.Signing.PrivateKey()
        let authority = NetworkAuthority(network: .random(), name: name,
                                         publicKey: Array(key.publicKey.rawRepresentation), createdAt: now)
        return NetworkAuthorityKey(authority: authority, privateKey: key)
    }

    /// A network from a fixed seed (tests and the simulator only: anyone knowing the seed can sign).
    public static func deterministic(name: String, seed: [UInt8], network: NetworkID, now: Int64) -> NetworkAuthorityKey {
        let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: SHA256.hash(data: seed))  // 32 bytes: cannot fail.
        return NetworkAuthorityKey(authority: NetworkAuthority(network: network, name: name,
                                                               publicKey: Array(key.publicKey.rawRepresentation),
                                                               createdAt: now),
                                   privateKey: key)
    }

    init(authority: NetworkAuthority, privateKey: Curve25519.Signing.PrivateKey) {
        self.authority = authority
        self.privateKey = privateKey
    }

    /// Signs a membership certificate for `publicKey`. Throws `CertificateRequestError` for what a
    /// certificate cannot hold (it never cuts anything silently), or if signing fails.
    public func issue(name: String, publicKey: [UInt8], virtualIPs: [VirtualIP], notBefore: Int64, notAfter: Int64,
                      serial: UInt64) throws -> MembershipCertificate {
        let nameLength = name.utf8.count
        guard (1...MembershipCertificate.maximumNameLength).contains(nameLength) else {
            throw CertificateRequestError.badName(length: nameLength)
        }
        guard virtualIPs.count <= MembershipCertificate.maximumVirtualIPs else {
            throw CertificateRequestError.tooManyVirtualIPs(virtualIPs.count)
        }
        guard publicKey.count == 32 else { throw CertificateRequestError.badPublicKey(length: publicKey.count) }
        guard notBefore <= notAfter else { throw CertificateRequestError.emptyValidity }
        var certificate = MembershipCertificate(network: authority.network, serial: serial, name: name,
                                                publicKey: publicKey, virtualIPs: virtualIPs,
                                                notBefore: notBefore, notAfter: notAfter)
        certificate.signature = Array(try privateKey.signature(for: certificate.signedBytes))
        return certificate
    }

    /// A member's complete credentials in one step, for whoever holds the authority key in the same process
    /// (the simulator, the local overlay, tests, benchmarks): `identity` (a fresh key unless given) with a
    /// certificate from `issue`. Operators do the same in steps, with `wow keygen` and `wow cert issue`.
    public func member(name: String, identity: NodeIdentity = .generate(), virtualIPs: [VirtualIP] = [],
                       notBefore: Int64, notAfter: Int64,
                       serial: UInt64 = .random(in: .min ... .max)) throws -> NodeCredentials {
        let certificate = try issue(name: name, publicKey: identity.publicKey, virtualIPs: virtualIPs,
                                    notBefore: notBefore, notAfter: notAfter, serial: serial)
        return try NodeCredentials(identity: identity, certificate: certificate, authority: authority)
    }

    /// The key file's content: the authority, then the raw private key.
    public var encoded: [UInt8] { authority.encoded + Array(privateKey.rawRepresentation) }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> NetworkAuthorityKey {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        let authority = try NetworkAuthority.read(from: &reader, end: false)
        let raw = try reader.bytes("authority private_key", count: 32)
        try reader.expectEnd()
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw),
              Array(key.publicKey.rawRepresentation) == authority.publicKey else {
            throw .invalidText(field: "authority private_key", reason: "does not match the authority's public key")
        }
        return NetworkAuthorityKey(authority: authority, privateKey: key)
    }
}

/// A node's long-term identity: its Ed25519 signing key (`node.key`, mode 0600).
public struct NodeIdentity: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey

    /// A fresh key from the system's cryptographic generator.
    public static func generate() -> NodeIdentity { NodeIdentity(privateKey: Curve25519.Signing.PrivateKey()) }

    /// A key from a fixed seed (tests and the simulator only).
    public static func deterministic(seed: [UInt8]) -> NodeIdentity {
        NodeIdentity(privateKey: try! Curve25519.Signing.PrivateKey(rawRepresentation: SHA256.hash(data: seed)))  // 32 bytes.
    }

    init(privateKey: Curve25519.Signing.PrivateKey) { self.privateKey = privateKey }

    public var publicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }

    /// The key file's content: the raw 32-byte private key.
    public var encoded: [UInt8] { Array(privateKey.rawRepresentation) }

    public static func decode(_ bytes: [UInt8]) throws(WireError) -> NodeIdentity {
        guard bytes.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else {
            throw .invalidText(field: "node key", reason: "not a 32-byte Ed25519 private key")
        }
        return NodeIdentity(privateKey: key)
    }

    func sign(_ bytes: [UInt8]) -> [UInt8] {
        // Signing with a valid key over bytes in memory does not fail in BoringSSL; an empty signature would
        // simply not verify at the peer.
        (try? Array(privateKey.signature(for: bytes))) ?? []
    }
}

/// What a membership certificate cannot hold.
public enum CertificateRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    case badName(length: Int)
    case tooManyVirtualIPs(Int)
    case badPublicKey(length: Int)
    case emptyValidity

    public var description: String {
        switch self {
        case .badName(let length):
            return "a certificate name has 1 to \(MembershipCertificate.maximumNameLength) bytes, not \(length)"
        case .tooManyVirtualIPs(let count):
            return "a certificate holds at most \(MembershipCertificate.maximumVirtualIPs) virtual IPs, not \(count)"
        case .badPublicKey(let length): return "an Ed25519 public key has 32 bytes, not \(length)"
        case .emptyValidity: return "the certificate would expire before it becomes valid"
        }
    }
}
