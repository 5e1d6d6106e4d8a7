#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import WOWKit

/// Fixed credentials for the harnesses and their seeds: one network from a fixed seed with its members, and an
/// impostor authority for the same network id. Everything is deterministic (the same keys, certificates and
/// signatures in every run), so seeds and reproducers stay valid.
enum FuzzFixtures {
    /// The wall clock certificates are checked against (2025-06-15).
    static let unixTime: Int64 = 1_750_000_000
    static let day: Int64 = 86_400
    static let year: Int64 = 365 * day
    /// Long-lived certificates: valid from 2020 to 2099, so that a config read now accepts them.
    static let longNotBefore: Int64 = 1_577_836_800
    static let longNotAfter: Int64 = 4_102_444_800

    static let network = NetworkID(bytes: [UInt8](repeating: 0x5A, count: NetworkID.byteCount))!
    static let authorityKey = NetworkAuthorityKey.deterministic(name: "fuzz-net", seed: Array("fuzz/ca".utf8),
                                                                network: network, now: longNotBefore)
    /// Another key claiming the same network: its members are not members.
    static let impostorKey = NetworkAuthorityKey.deterministic(name: "fuzz-net", seed: Array("fuzz/impostor".utf8),
                                                               network: network, now: longNotBefore)

    static func identity(_ name: String) -> NodeIdentity { .deterministic(seed: Array("fuzz/node/\(name)".utf8)) }

    static func member(_ name: String, ip: UInt32?, of key: NetworkAuthorityKey = authorityKey,
                       notBefore: Int64 = longNotBefore, notAfter: Int64 = longNotAfter,
                       serial: UInt64 = 1) -> NodeCredentials {
        do {
            return try key.member(name: name, identity: identity(name), virtualIPs: ip.map { [VirtualIP($0)] } ?? [],
                                  notBefore: notBefore, notAfter: notAfter, serial: serial)
        } catch {
            fatalError("fixture credentials for \(name): \(error)")
        }
    }

    static let alice = member("alice", ip: 0x6440_0001)
    static let bob = member("bob", ip: 0x6440_0002)
    /// Valid one year either side of `unixTime` only.
    static let carol = member("carol", ip: 0x6440_0003, notBefore: unixTime - year, notAfter: unixTime + year)
    /// Revoked in `bobRevokingDave`.
    static let dave = member("dave", ip: 0x6440_0004)
    /// A router-only member (no virtual IP).
    static let router = member("router", ip: nil)
    /// Holds a certificate from the impostor authority.
    static let mallory = member("mallory", ip: 0x6440_0005, of: impostorKey)
    /// Bob with dave's certificate revoked.
    static let bobRevokingDave: NodeCredentials = {
        var credentials = bob
        credentials.revoked = [dave.certificate.fingerprint]
        return credentials
    }()

    /// The certificates the network's authority signed (the only ones `check` may accept).
    static let genuineCertificates: Set<[UInt8]> = Set([alice, bob, carol, dave, router].map { $0.certificate.encoded })

    /// A directory holding credential files for configs (`ca.crt`, `alice.crt`, `alice.key`, `bob.crt`,
    /// `mallory.crt`, `revoked.txt`), made once per process and removed at exit.
    static let credentialDirectory: String = {
        var template = Array("/tmp/wow-fuzz-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp: \(String(cString: strerror(errno)))") }
        let directory = String(cString: made)
        do {
            try CredentialFile.write(authorityKey.authority.encoded, as: .authority, to: directory + "/ca.crt")
            try CredentialFile.write(alice.certificate.encoded, as: .certificate, to: directory + "/alice.crt")
            try CredentialFile.write(alice.identity.encoded, as: .nodeKey, to: directory + "/alice.key")
            try CredentialFile.write(bob.certificate.encoded, as: .certificate, to: directory + "/bob.crt")
            try CredentialFile.write(mallory.certificate.encoded, as: .certificate, to: directory + "/mallory.crt")
            try ("# lost laptop\n" + dave.certificate.fingerprint.description + "\n")
                .write(toFile: directory + "/revoked.txt", atomically: false, encoding: .utf8)
        } catch {
            fatalError("writing the fixture credentials to \(directory): \(error)")
        }
        atexit { try? FileManager.default.removeItem(atPath: FuzzFixtures.credentialDirectory) }
        return directory
    }()
}
