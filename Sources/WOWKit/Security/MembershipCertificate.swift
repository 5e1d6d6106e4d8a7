import Crypto
import NIOCore

/// A node's membership of one network: the network's certificate authority binds the node's public key to
/// its name, its virtual IPs and a validity period (`wow cert issue`). Peers accept a node only with one of
/// these (docs/security.md).
///
/// Wire form (docs/protocol.md, "Membership certificate"): `format:u8 network:16 serial:u64 name:text
/// public_key:32 vip_count:u8 (family:u8 address)* not_before:u64 not_after:u64 signature:64`, where the
/// signature is the authority's Ed25519 signature over every byte before it, and an address is 4 bytes for
/// family 4 and 16 for family 6. `decode` is total.
public struct MembershipCertificate: Equatable, Sendable {
    public static let formatVersion: UInt8 = 1
    public static let maximumNameLength = 64
    public static let maximumVirtualIPs = 8
    /// The largest encoded certificate (a name of 64 bytes and 8 IPv6 virtual IPs): 339 bytes.
    public static let maximumEncodedSize = 1 + 16 + 8 + 1 + maximumNameLength + 32 + 1 + 17 * maximumVirtualIPs + 8 + 8 + 64

    public var network: NetworkID
    /// Chosen at random by the issuer; tells two certificates for the same key apart in logs.
    public var serial: UInt64
    public var name: String
    /// The node's Ed25519 identity key (raw, 32 bytes).
    public var publicKey: [UInt8]
    /// The virtual IPs the node may use; empty for a router-only node.
    public var virtualIPs: [VirtualIP]
    /// Seconds since 1970 (UTC) from which the certificate is valid.
    public var notBefore: Int64
    /// Seconds since 1970 (UTC) after which it is not.
    public var notAfter: Int64
    /// The authority's signature over `signedBytes`.
    public var signature: [UInt8]

    public init(network: NetworkID, serial: UInt64, name: String, publicKey: [UInt8], virtualIPs: [VirtualIP],
                notBefore: Int64, notAfter: Int64, signature: [UInt8] = []) {
        self.network = network
        self.serial = serial
        self.name = name
        self.publicKey = publicKey
        self.virtualIPs = virtualIPs
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.signature = signature
    }

    /// The bytes the authority signs: the whole wire form but the signature.
    public var signedBytes: [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(MembershipCertificate.formatVersion)
        buffer.writeBytes(network.bytes)
        buffer.writeInteger(serial, endianness: .big)
        buffer.writeShortText(name, limit: MembershipCertificate.maximumNameLength)
        buffer.writeBytes(publicKey)
        let ips = virtualIPs.prefix(MembershipCertificate.maximumVirtualIPs)
        buffer.writeInteger(UInt8(ips.count))
        for ip in ips {
            buffer.writeInteger(ip.family.rawValue)
            buffer.writeBytes(ip.bytes)
        }
        buffer.writeInteger(UInt64(bitPattern: notBefore), endianness: .big)
        buffer.writeInteger(UInt64(bitPattern: notAfter), endianness: .big)
        return Array(buffer.readableBytesView)
    }

    /// The wire form.
    public var encoded: [UInt8] { signedBytes + signature }

    /// Parses a certificate (without checking its signature: `NodeCredentials.check` does).
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> MembershipCertificate {
        var reader = WireReader(ByteBuffer(bytes: bytes))
        let format = try reader.u8("certificate format")
        guard format == formatVersion else { throw .unknownValue(field: "certificate format", value: format) }
        let network = NetworkID(bytes: try reader.bytes("certificate network", count: NetworkID.byteCount))!
        let serial = try reader.u64("certificate serial")
        let name = try reader.text("certificate name", limit: maximumNameLength)
        let key = try reader.bytes("certificate public_key", count: 32)
        let count = Int(try reader.u8("certificate vip_count"))
        guard count <= maximumVirtualIPs else {
            throw .tooLong(field: "certificate vip_count", length: count, limit: maximumVirtualIPs)
        }
        var ips: [VirtualIP] = []
        for _ in 0..<count {
            let family = try reader.u8("certificate vip family")
            switch VirtualIP.Family(rawValue: family) {
            case .v4: ips.append(VirtualIP(try reader.u32("certificate vip")))
            case .v6:
                guard let ip = VirtualIP(bytes: try reader.bytes("certificate vip", count: 16)) else {
                    throw .unknownValue(field: "certificate vip (IPv4-mapped IPv6)", value: family)
                }
                ips.append(ip)
            case nil: throw .unknownValue(field: "certificate vip family", value: family)
            }
        }
        let notBefore = Int64(bitPattern: try reader.u64("certificate not_before"))
        let notAfter = Int64(bitPattern: try reader.u64("certificate not_after"))
        let signature = try reader.bytes("certificate signature", count: 64)
        try reader.expectEnd()
        return MembershipCertificate(network: network, serial: serial, name: name, publicKey: key, virtualIPs: ips,
                                     notBefore: notBefore, notAfter: notAfter, signature: signature)
    }

    /// SHA-256 of the wire form: what revocation lists name.
    public var fingerprint: CertificateFingerprint { CertificateFingerprint(bytes: Array(SHA256.hash(data: encoded))) }

    /// The one ring address this certificate lets its holder sit at: the hash of its first virtual IP, or of
    /// its key for a router-only node (docs/security.md, "Addresses").
    public var entitledAddress: Address {
        if let ip = virtualIPs.first { return Address.forVirtualIP(ip, network: network) }
        return Address.forNodeKey(publicKey, network: network)
    }

    /// Whether `authority`'s key signed this certificate.
    public func isSigned(by authority: NetworkAuthority) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: authority.publicKey) else { return false }
        return key.isValidSignature(signature, for: signedBytes)
    }
}

/// The SHA-256 of a certificate's wire form, in hex.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init?(hex: String) {
        guard let bytes = HexText.decode(hex), bytes.count == 32 else { return nil }
        self.bytes = bytes
    }
    public var description: String { HexText.encode(bytes) }
    /// The first 16 hex digits, for logs.
    public var short: String { String(description.prefix(16)) }
}

extension Address {
    /// Where the holder of `ip` sits on the ring: SHA-256 of the network id and the address, cut to 160 bits.
    /// Any node can compute it from a destination IP (the virtual network routes by it).
    public static func forVirtualIP(_ ip: VirtualIP, network: NetworkID) -> Address {
        prefix(of: SHA256.hash(data: Array("wow/vip/1".utf8) + network.bytes + ip.bytes))
    }

    /// Where a router-only node (no virtual IP) sits on the ring: SHA-256 of the network id and its identity
    /// key, cut to 160 bits.
    public static func forNodeKey(_ publicKey: [UInt8], network: NetworkID) -> Address {
        prefix(of: SHA256.hash(data: Array("wow/key/1".utf8) + network.bytes + publicKey))
    }

    static func prefix(of digest: SHA256.Digest) -> Address { Address(bytes: Array(digest).prefix(byteCount))! }
}
