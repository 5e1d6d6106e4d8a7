import Crypto
import NIOCore

/// A member's entry in the overlay's name service: its certificate (the network authority binds the name to
/// the node's key and virtual IPs; the ring address follows from them) and when the member published it,
/// signed with the member's own key. `certificate_length:u16 certificate published_at:u64 signature:64`.
///
/// Only the holder of the certificate's key can make a fresh record, and only the authority can make a
/// certificate with that name: a member cannot claim another's name. A copy replayed later stops being
/// accepted `NameRecord.lifetime` after it was published.
public struct NameRecord: Equatable, Sendable {
    public var certificate: MembershipCertificate
    /// Seconds since 1970 when the member published this record.
    public var publishedAt: Int64
    public var signature: [UInt8]

    /// How long a record is accepted and kept after it was published; members publish again well before.
    public static let lifetime: Int64 = 600
    /// How far ahead of the receiver's clock a record's time may be (clocks of members differ).
    public static let clockSkew: Int64 = 300

    /// A fresh record for `credentials`, published at `unixTime`.
    public init(credentials: NodeCredentials, at unixTime: Int64) {
        certificate = credentials.certificate
        publishedAt = unixTime
        signature = credentials.identity.sign(NameRecord.signedBytes(certificate, publishedAt: unixTime))
    }

    init(certificate: MembershipCertificate, publishedAt: Int64, signature: [UInt8]) {
        self.certificate = certificate
        self.publishedAt = publishedAt
        self.signature = signature
    }

    /// The name, as names are compared (case does not matter).
    public var key: String { certificate.name.lowercased() }
    public var address: Address { certificate.entitledAddress }

    /// Every key the record is kept and found under: its name, and each virtual IP beyond the first (a node
    /// sits at the ring address of its first; a packet for another of its IPs finds that address here,
    /// docs/operations.md, "Names"). A name that reads as a virtual IP is no name key (only the IP's holder answers it).
    public var keys: [String] {
        let name = VirtualIP(key) == nil ? [key] : []
        return name + certificate.virtualIPs.dropFirst().map(\.description)
    }

    /// Whether this record answers a lookup of `key` (a lowercased name, or a virtual IP's text).
    public func answers(_ key: String) -> Bool { NameRecord.certificate(certificate, answers: key) }

    static func certificate(_ certificate: MembershipCertificate, answers key: String) -> Bool {
        if let ip = VirtualIP(key) { return certificate.virtualIPs.contains(ip) }
        return certificate.name.lowercased() == key
    }

    /// Where on the ring the record for `key` is stored: the node nearest this address keeps it. For a virtual
    /// IP, the address its holder would sit at were it its first.
    public static func ringKey(forKey key: String, network: NetworkID) -> Address {
        if let ip = VirtualIP(key) { return Address.forVirtualIP(ip, network: network) }
        return Address.prefix(of: SHA256.hash(data: Array("wow/name/1".utf8) + network.bytes + Array(key.lowercased().utf8)))
    }

    static func signedBytes(_ certificate: MembershipCertificate, publishedAt: Int64) -> [UInt8] {
        var bytes = Array("wow/name/1".utf8) + certificate.fingerprint.bytes
        withUnsafeBytes(of: UInt64(bitPattern: publishedAt).bigEndian) { bytes += $0 }
        return bytes
    }

    /// Why this record must not be believed at `unixTime` in the network of `credentials`; nil when it may.
    public func refusal(by credentials: NodeCredentials, at unixTime: Int64) -> NameRecordRefusal? {
        if let refusal = credentials.check(certificate, at: unixTime) { return .certificate(refusal) }
        if publishedAt > unixTime + NameRecord.clockSkew { return .fromTheFuture }
        if publishedAt + NameRecord.lifetime < unixTime { return .stale }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: certificate.publicKey),
              key.isValidSignature(signature, for: NameRecord.signedBytes(certificate, publishedAt: publishedAt)) else {
            return .badSignature
        }
        return nil
    }

    func encode(into buffer: inout ByteBuffer) {
        let certificate = certificate.encoded
        buffer.writeInteger(UInt16(certificate.count), endianness: .big)
        buffer.writeBytes(certificate)
        buffer.writeInteger(UInt64(bitPattern: publishedAt), endianness: .big)
        buffer.writeBytes(signature)
    }

    init(from reader: inout WireReader) throws(WireError) {
        let length = Int(try reader.u16("name_record certificate_length"))
        guard length <= MembershipCertificate.maximumEncodedSize else {
            throw .tooLong(field: "name_record certificate", length: length, limit: MembershipCertificate.maximumEncodedSize)
        }
        certificate = try MembershipCertificate.decode(try reader.bytes("name_record certificate", count: length))
        publishedAt = Int64(bitPattern: try reader.u64("name_record published_at"))
        signature = try reader.bytes("name_record signature", count: 64)
    }
}

/// Why a name record was not believed.
public enum NameRecordRefusal: Equatable, Sendable, CustomStringConvertible {
    case certificate(SecurityRefusal)
    case fromTheFuture
    case stale
    case badSignature

    public var description: String {
        switch self {
        case .certificate(let refusal): return refusal.description
        case .fromTheFuture: return "published in the future (clocks more than \(NameRecord.clockSkew) s apart)"
        case .stale: return "published more than \(NameRecord.lifetime) s ago"
        case .badSignature: return "not signed by the key its certificate names"
        }
    }

    /// The drop counter's name.
    public var reason: String {
        switch self {
        case .certificate(let refusal): return "name_\(refusal.reason)"
        case .fromTheFuture: return "name_from_the_future"
        case .stale: return "name_stale"
        case .badSignature: return "name_bad_signature"
        }
    }
}
