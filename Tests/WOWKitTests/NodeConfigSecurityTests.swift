import Foundation
import XCTest
@testable import WOWKit

/// The `security` section of a node config: credential files read and checked at parse time, every problem
/// a `ConfigError` at its key.
final class NodeConfigSecurityTests: XCTestCase {
    private var directory = ""
    private var authorityKey = NetworkAuthorityKey.create(name: "lab", now: 0)
    private var identity = NodeIdentity.generate()
    private var certificate: MembershipCertificate!
    private let now = Int64(Date().timeIntervalSince1970)

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "wow-config-security-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let directory = self.directory
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        certificate = try issue(virtualIPs: [VirtualIP("100.64.0.7")!])
        try CredentialFile.write(authorityKey.authority.encoded, as: .authority, to: path("ca.crt"))
        try CredentialFile.write(identity.encoded, as: .nodeKey, to: path("node.key"))
        try CredentialFile.write(certificate.encoded, as: .certificate, to: path("node.crt"))
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    private func issue(by key: NetworkAuthorityKey? = nil, for publicKey: [UInt8]? = nil,
                       virtualIPs: [VirtualIP] = [], notBefore: Int64? = nil,
                       notAfter: Int64? = nil) throws -> MembershipCertificate {
        try (key ?? authorityKey).issue(name: "alpha", publicKey: publicKey ?? identity.publicKey,
                                        virtualIPs: virtualIPs, notBefore: notBefore ?? now - 60,
                                        notAfter: notAfter ?? now + 86_400, serial: 7)
    }

    private func writeCertificate(_ certificate: MembershipCertificate) throws {
        try CredentialFile.write(certificate.encoded, as: .certificate, to: path("node.crt"), replacing: true)
    }

    /// A config file in the test directory with `security` (YAML lines, indented by two) and optionally
    /// `node.address`; parsed with `NodeConfig(contentsOfFile:)`.
    private func parse(_ security: String, address: String? = nil) throws -> NodeConfig {
        let node = address.map { "node:\n  name: alpha\n  address: \($0)\n" } ?? "node:\n  name: alpha\n"
        let text = node + "transports:\n  - scheme: udp\nsecurity:\n" + security
        try text.write(toFile: path("node.yml"), atomically: true, encoding: .utf8)
        return try NodeConfig(contentsOfFile: path("node.yml"))
    }

    private static let complete = "  ca: ca.crt\n  certificate: node.crt\n  key: node.key\n"

    /// The error parsing `security` gives; fails the test when it parses.
    private func error(_ security: String, address: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) -> ConfigError? {
        do {
            _ = try parse(security, address: address)
            XCTFail("the config parsed", file: file, line: line)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            XCTFail("not a ConfigError: \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: Valid sections

    func testSecuredSectionLoadsTheCredentialsRelativeToTheConfigFile() throws {
        try RevocationList.add(CertificateFingerprint(hex: String(repeating: "ab", count: 32))!, comment: nil,
                               toFileAt: path("revoked.txt"))
        let config = try parse(Self.complete + "  revoked: revoked.txt\n  rekey_after_s: 300\n")
        guard case .secured(let secured) = config.security else { return XCTFail("not secured: \(config.security)") }
        XCTAssertEqual(secured.credentials.certificate, certificate)
        XCTAssertEqual(secured.credentials.authority, authorityKey.authority)
        XCTAssertEqual(secured.credentials.identity.publicKey, identity.publicKey)
        XCTAssertEqual(secured.credentials.revoked.count, 1)
        XCTAssertEqual(secured.revocationFile, URL(fileURLWithPath: path("revoked.txt")).standardizedFileURL.path)
        XCTAssertEqual(secured.channel.rekeyAfter, .seconds(300))
        XCTAssertGreaterThan(secured.channel.rejectAfter, secured.channel.rekeyAfter)
        XCTAssertEqual(config.resolvedAddress, certificate.entitledAddress)
    }

    func testDefaultsWithoutOptionalKeys() throws {
        guard case .secured(let secured) = try parse(Self.complete).security else { return XCTFail("not secured") }
        XCTAssertNil(secured.revocationFile)
        XCTAssertTrue(secured.credentials.revoked.isEmpty)
        XCTAssertEqual(secured.channel, SecureChannel.Settings())
    }

    func testAbsolutePathsAreTakenAsGiven() throws {
        let config = try parse("  ca: \(path("ca.crt"))\n  certificate: \(path("node.crt"))\n  key: \(path("node.key"))\n")
        XCTAssertNotNil(config.security.credentials)
    }

    func testWithoutAConfigFileRelativePathsResolveAgainstTheCurrentDirectory() throws {
        let previous = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(directory))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        let config = try NodeConfig(yaml: "node: { name: alpha }\ntransports: [ { scheme: udp } ]\nsecurity:\n"
                                        + Self.complete)
        XCTAssertEqual(config.security.credentials?.certificate, certificate)
    }

    func testInsecureTrueIsInsecure() throws {
        guard case .insecure = try parse("  insecure: true\n").security else { return XCTFail("not insecure") }
    }

    func testAbsentSectionIsUnspecified() throws {
        guard case .unspecified = try NodeConfig(yaml: "node: { name: a }\ntransports: [ { scheme: udp } ]\n").security
        else { return XCTFail("not unspecified") }
    }

    func testNodeAddressEqualToTheEntitledOneIsAccepted() throws {
        let config = try parse(Self.complete, address: certificate.entitledAddress.hex)
        XCTAssertEqual(config.address, certificate.entitledAddress)
    }

    // MARK: Errors

    func testInsecureBesideCredentialsIsRefusedAtTheOtherKey() throws {
        let error = try XCTUnwrap(self.error("  insecure: true\n  ca: ca.crt\n"))
        XCTAssertEqual(error.key, "security.ca")
        XCTAssertEqual(error.line, 7)
        XCTAssertTrue(error.reason.contains("no use beside 'insecure: true'"), error.reason)
    }

    func testInsecureMustBeABoolean() throws {
        let error = try XCTUnwrap(self.error("  insecure: maybe\n"))
        XCTAssertEqual(error.key, "security.insecure")
        XCTAssertTrue(error.reason.contains("expected true or false"), error.reason)
    }

    func testInsecureFalseNeedsTheCredentials() throws {
        let error = try XCTUnwrap(self.error("  insecure: false\n"))
        XCTAssertEqual(error.key, "security.ca")
        XCTAssertTrue(error.reason.contains("missing required key 'ca'"), error.reason)
    }

    func testMissingKeyIsNamed() throws {
        let error = try XCTUnwrap(self.error("  ca: ca.crt\n  certificate: node.crt\n"))
        XCTAssertEqual(error.key, "security.key")
        XCTAssertTrue(error.reason.contains("missing required key 'key'"), error.reason)
        XCTAssertTrue(error.reason.contains("wow keygen"), error.reason)
    }

    func testMisspeltKeyGetsASuggestion() throws {
        let error = try XCTUnwrap(self.error("  ca: ca.crt\n  certficate: node.crt\n  key: node.key\n"))
        XCTAssertEqual(error.key, "security.certficate")
        XCTAssertTrue(error.reason.contains("did you mean 'certificate'?"), error.reason)
    }

    func testMissingFileIsRefusedAtItsKey() throws {
        let error = try XCTUnwrap(self.error("  ca: nope.crt\n  certificate: node.crt\n  key: node.key\n"))
        XCTAssertEqual(error.key, "security.ca")
        XCTAssertEqual(error.file, path("node.yml"))
        XCTAssertEqual(error.line, 6)
        XCTAssertTrue(error.reason.contains(path("nope.crt") + ": cannot read it"), error.reason)
    }

    func testGroupReadableKeyIsRefused() throws {
        chmod(path("node.key"), 0o640)
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.key")
        XCTAssertTrue(error.reason.contains("readable by other users (mode 640)"), error.reason)
        XCTAssertTrue(error.reason.contains("chmod 600"), error.reason)
    }

    func testWrongKindOfFileSaysWhatItHolds() throws {
        let error = try XCTUnwrap(self.error("  ca: node.crt\n  certificate: node.crt\n  key: node.key\n"))
        XCTAssertEqual(error.key, "security.ca")
        XCTAssertTrue(error.reason.contains("it holds WOW CERTIFICATE"), error.reason)
    }

    func testDamagedFileIsRefused() throws {
        try "-----BEGIN WOW CERTIFICATE-----\nAAAA\n-----END WOW CERTIFICATE-----\n"
            .write(toFile: path("node.crt"), atomically: true, encoding: .utf8)
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains("not a valid membership certificate"), error.reason)
    }

    func testKeyNotMatchingTheCertificateIsRefusedAtTheKey() throws {
        try CredentialFile.write(NodeIdentity.generate().encoded, as: .nodeKey, to: path("node.key"), replacing: true)
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.key")
        XCTAssertTrue(error.reason.contains(CredentialMismatch.keyMismatch.description), error.reason)
    }

    func testCertificateOfAnotherNetworkIsRefused() throws {
        try writeCertificate(try issue(by: NetworkAuthorityKey.create(name: "other", now: 0)))
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains("the certificate is of network"), error.reason)
    }

    func testCertificateNotSignedByTheCAIsRefused() throws {
        let impostor = NetworkAuthorityKey.deterministic(name: "lab", seed: [1, 2, 3],
                                                         network: authorityKey.authority.network, now: 0)
        try writeCertificate(try issue(by: impostor))
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains(CredentialMismatch.notSignedByAuthority.description), error.reason)
    }

    func testExpiredCertificateIsRefusedWithItsDate() throws {
        try writeCertificate(try issue(notBefore: 1_000_000_000, notAfter: 1_000_086_400))
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains("expired at 2001-09-10T01:46:40Z"), error.reason)
    }

    func testNotYetValidCertificateIsRefusedWithItsDate() throws {
        try writeCertificate(try issue(notBefore: 4_102_444_800, notAfter: 4_102_531_200))
        let error = try XCTUnwrap(self.error(Self.complete))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains("not valid before 2100-01-01T00:00:00Z"), error.reason)
    }

    func testOwnRevokedCertificateIsRefused() throws {
        try RevocationList.add(certificate.fingerprint, comment: nil, toFileAt: path("revoked.txt"))
        let error = try XCTUnwrap(self.error(Self.complete + "  revoked: revoked.txt\n"))
        XCTAssertEqual(error.key, "security.certificate")
        XCTAssertTrue(error.reason.contains("is revoked"), error.reason)
    }

    func testBadRevocationListNamesItsLine() throws {
        try "# list\nnot hex\n".write(toFile: path("revoked.txt"), atomically: true, encoding: .utf8)
        let error = try XCTUnwrap(self.error(Self.complete + "  revoked: revoked.txt\n"))
        XCTAssertEqual(error.key, "security.revoked")
        XCTAssertTrue(error.reason.contains("revoked.txt:2:"), error.reason)
    }

    func testRekeyIntervalOutOfRangeIsRefused() throws {
        for value in ["9", "86401"] {
            let error = try XCTUnwrap(self.error(Self.complete + "  rekey_after_s: \(value)\n"))
            XCTAssertEqual(error.key, "security.rekey_after_s")
            XCTAssertTrue(error.reason.contains("from 10 to 86400"), error.reason)
        }
    }

    func testNodeAddressOtherThanTheEntitledOneIsRefusedAtNodeAddress() throws {
        let error = try XCTUnwrap(self.error(Self.complete, address: String(repeating: "0", count: 40)))
        XCTAssertEqual(error.key, "node.address")
        XCTAssertEqual(error.line, 3)
        XCTAssertTrue(error.reason.contains("entitles \(certificate.entitledAddress.hex) only"), error.reason)
        XCTAssertTrue(error.reason.contains("100.64.0.7"), error.reason)
    }

    func testSecurityMustBeAMapping() throws {
        let error = try XCTUnwrap(self.error("  - ca.crt\n"))
        XCTAssertEqual(error.key, "security")
        XCTAssertTrue(error.reason.contains("expected a mapping"), error.reason)
    }

    // MARK: virtual_network (needs the certificate's virtual IP)

    func testVirtualNetworkSectionDefaultsAndValues() throws {
        let defaults = try parse(Self.complete + "virtual_network: {}\n")
        XCTAssertEqual(defaults.virtualNetwork, VirtualNetwork.Settings())
        XCTAssertEqual(defaults.virtualNetwork?.deviceName, "wow0")
        XCTAssertEqual(defaults.virtualNetwork?.mtu, 1260)
        let config = try parse(Self.complete + "virtual_network:\n  device: tun-lab\n  prefix: 100.64.0.0/16\n  mtu: 1400\n")
        XCTAssertEqual(config.virtualNetwork?.deviceName, "tun-lab")
        XCTAssertEqual(config.virtualNetwork?.prefix, VirtualPrefix("100.64.0.0/16"))
        XCTAssertEqual(config.virtualNetwork?.mtu, 1400)
        XCTAssertEqual(defaults.virtualNetwork?.offload, true, "offload is on by default")
        XCTAssertEqual(try parse(Self.complete + "virtual_network: { offload: false }\n").virtualNetwork?.offload, false)
        XCTAssertNil(try parse(Self.complete).virtualNetwork, "no section: the node only routes")
    }

    func testVirtualNetworkSectionErrorsNameTheKey() throws {
        var error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { device: \"much-too-long-name\" }\n"))
        XCTAssertEqual(error.key, "virtual_network.device")
        XCTAssertTrue(error.reason.contains("1 to 15"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { prefix: 100.64.0.1/10 }\n"))
        XCTAssertEqual(error.key, "virtual_network.prefix")
        XCTAssertTrue(error.reason.contains("host bits zero"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { prefix: 100.96.0.0/11 }\n"))
        XCTAssertEqual(error.key, "virtual_network.prefix")
        XCTAssertTrue(error.reason.contains("100.64.0.7 is outside the virtual network 100.96.0.0/11"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { mtu: 100 }\n"))
        XCTAssertEqual(error.key, "virtual_network.mtu")
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { offload: yes }\n"))
        XCTAssertEqual(error.key, "virtual_network.offload")
        XCTAssertTrue(error.reason.contains("true or false"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { devce: wow0 }\n"))
        XCTAssertEqual(error.key, "virtual_network.devce")
    }

    func testVirtualNetworkNeedsACertificateWithAVirtualIP() throws {
        try writeCertificate(try issue())
        var error = try XCTUnwrap(self.error(Self.complete + "virtual_network: {}\n"))
        XCTAssertEqual(error.key, "virtual_network")
        XCTAssertTrue(error.reason.contains("names no virtual IP"), error.reason)
        error = try XCTUnwrap(self.error("  insecure: true\nvirtual_network: {}\n"))
        XCTAssertEqual(error.key, "virtual_network")
        XCTAssertTrue(error.reason.contains("needs a secured node"), error.reason)
    }

    func testVirtualNetworkWithAnIPv6Address() throws {
        try writeCertificate(try issue(virtualIPs: [VirtualIP("100.64.0.7")!, VirtualIP("fd77:6f77::7")!]))
        let defaults = try XCTUnwrap(try parse(Self.complete + "virtual_network: {}\n").virtualNetwork)
        XCTAssertEqual(defaults.ipv6Prefix, .defaultIPv6)
        XCTAssertEqual(defaults.mtu, 1280, "IPv6's minimum MTU when the certificate names an IPv6 address")
        let set = try XCTUnwrap(try parse(Self.complete + "virtual_network: { ipv6_prefix: \"fd77::/16\", mtu: 1400 }\n").virtualNetwork)
        XCTAssertEqual(set.ipv6Prefix, VirtualPrefix("fd77::/16"))
        XCTAssertEqual(set.mtu, 1400)
        var error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { mtu: 1260 }\n"))
        XCTAssertEqual(error.key, "virtual_network.mtu")
        XCTAssertTrue(error.reason.contains("below IPv6's minimum of 1280"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { ipv6_prefix: \"fd00::/16\" }\n"))
        XCTAssertEqual(error.key, "virtual_network.ipv6_prefix")
        XCTAssertTrue(error.reason.contains("fd77:6f77::7 is outside the virtual network fd00::/16"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { ipv6_prefix: 100.64.0.0/10 }\n"))
        XCTAssertEqual(error.key, "virtual_network.ipv6_prefix")
        XCTAssertTrue(error.reason.contains("is not an IPv6 network"), error.reason)
        error = try XCTUnwrap(self.error(Self.complete + "virtual_network: { prefix: \"fd77::/16\" }\n"))
        XCTAssertEqual(error.key, "virtual_network.prefix")
        XCTAssertTrue(error.reason.contains("is not an IPv4 network"), error.reason)
        // An IPv6-only member.
        try writeCertificate(try issue(virtualIPs: [VirtualIP("fd77:6f77::7")!]))
        XCTAssertEqual(try parse(Self.complete + "virtual_network: {}\n").virtualNetwork?.mtu, 1280)
    }
}
