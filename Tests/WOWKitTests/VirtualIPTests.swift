import XCTest

@testable import WOWKit

/// Virtual IPs of both families: text both ways, bytes, and certificates that carry them.
final class VirtualIPTests: XCTestCase {
    func testIPv4TextAndBytes() throws {
        let ip = try XCTUnwrap(VirtualIP("100.64.0.7"))
        XCTAssertEqual(ip, VirtualIP(0x6440_0007))
        XCTAssertEqual(ip.family, .v4)
        XCTAssertEqual(ip.ipv4, 0x6440_0007)
        XCTAssertEqual(ip.bytes, [100, 64, 0, 7])
        XCTAssertEqual(ip.description, "100.64.0.7")
        XCTAssertEqual(VirtualIP(bytes: [100, 64, 0, 7]), ip)
        for bad in ["100.64.0", "100.64.0.256", "100.64.00.7", "100.64.0.7.1", "", "a.b.c.d", "100.64.0.+7"] {
            XCTAssertNil(VirtualIP(bad), bad)
        }
    }

    func testIPv6TextIsParsedAndWrittenCanonically() throws {
        let cases: [(String, String)] = [
            ("fd77:6f77::7", "fd77:6f77::7"),
            ("FD77:6F77:0000:0000:0000:0000:0000:0007", "fd77:6f77::7"),
            ("fd00::", "fd00::"),
            ("::1", "::1"),
            ("fd00:0:0:1:0:0:0:1", "fd00:0:0:1::1"),  // the longest run of zeros
            ("fd00:0:0:1:1:0:0:1", "fd00::1:1:0:0:1"),  // the first of two as long
            ("fd00:1:2:3:4:5:0:7", "fd00:1:2:3:4:5:0:7"),  // one zero group stays
            ("fd00:1:2:3:4:5:6:7", "fd00:1:2:3:4:5:6:7"),
        ]
        for (text, canonical) in cases {
            let ip = try XCTUnwrap(VirtualIP(text), text)
            XCTAssertEqual(ip.family, .v6, text)
            XCTAssertNil(ip.ipv4)
            XCTAssertEqual(ip.description, canonical, text)
            XCTAssertEqual(VirtualIP(canonical), ip)
            XCTAssertEqual(VirtualIP(bytes: ip.bytes), ip)
            XCTAssertEqual(ip.bytes.count, 16)
        }
        XCTAssertEqual(VirtualIP("fd77:6f77::7")?.bytes, [0xFD, 0x77, 0x6F, 0x77] + Array(repeating: 0, count: 11) + [7])
        for bad in ["fd00:::1", "fd00::1::2", "fd00:1:2:3:4:5:6:7:8", "fd00:1:2:3:4:5:6", "fd000::1", "fd00::g",
                    "fd00::1%eth0", "::ffff:100.64.0.7", "::ffff:6440:7", ":", "fd00:1:2:3:4:5:6::7:8", "fd00:"] {
            XCTAssertNil(VirtualIP(bad), bad)
        }
        XCTAssertNil(VirtualIP(v6: 0, low: 0xFFFF_6440_0007), "IPv4-mapped: that is an IPv4 address here")
        XCTAssertLessThan(VirtualIP("100.64.0.7")!, VirtualIP("fd00::1")!)
    }

    func testCertificatesCarryBothFamilies() throws {
        let network = TestNetwork()
        let ips = [VirtualIP("100.64.0.7")!, VirtualIP("fd77:6f77::7")!]
        let certificate = try network.certificate("dual", virtualIPs: ips)
        let decoded = try MembershipCertificate.decode(certificate.encoded)
        XCTAssertEqual(decoded.virtualIPs, ips)
        XCTAssertTrue(decoded.isSigned(by: network.authority))
        XCTAssertEqual(decoded.entitledAddress, Address.forVirtualIP(ips[0], network: network.id), "the first decides")
        let largest = try network.certificate(String(repeating: "n", count: MembershipCertificate.maximumNameLength),
                                              virtualIPs: (1...8).map { VirtualIP("fd77:6f77::\($0)")! })
        XCTAssertEqual(largest.encoded.count, MembershipCertificate.maximumEncodedSize)
        // An unknown family, and an IPv4-mapped IPv6 address, are refused.
        var bytes = certificate.encoded
        let familyAt = 1 + 16 + 8 + 1 + 4 + 32 + 1
        XCTAssertEqual(bytes[familyAt], 4)
        bytes[familyAt] = 5
        XCTAssertThrowsError(try MembershipCertificate.decode(bytes))
        var mapped = try network.certificate("mapped", virtualIPs: [VirtualIP("fd77:6f77::7")!]).encoded
        mapped.replaceSubrange((familyAt + 1)..<(familyAt + 17), with: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 100, 64, 0, 7])
        XCTAssertThrowsError(try MembershipCertificate.decode(mapped))
    }

    func testNameRecordsAreFoundByNameAndByEveryIPButTheFirst() throws {
        let network = TestNetwork()
        let member = try network.member("beta", virtualIPs: [VirtualIP("100.64.0.2")!, VirtualIP("fd77:6f77::2")!])
        let record = NameRecord(credentials: member, at: TestNetwork.unixTime)
        XCTAssertEqual(record.keys, ["beta", "fd77:6f77::2"])
        XCTAssertTrue(record.answers("beta"))
        XCTAssertTrue(record.answers("fd77:6f77::2"))
        XCTAssertTrue(record.answers("100.64.0.2"))
        XCTAssertFalse(record.answers("fd77:6f77::3"))
        XCTAssertEqual(NameRecord.ringKey(forKey: "fd77:6f77::2", network: network.id),
                       Address.forVirtualIP(VirtualIP("fd77:6f77::2")!, network: network.id))
        var service = NameService()
        XCTAssertEqual(service.keep(record, credentials: member, unixTime: TestNetwork.unixTime), .new)
        XCTAssertEqual(service.record(forKey: "fd77:6f77::2", unixTime: TestNetwork.unixTime), record)
        XCTAssertEqual(service.record(forKey: "BETA", unixTime: TestNetwork.unixTime), record)
        XCTAssertEqual(service.keep(record, credentials: member, unixTime: TestNetwork.unixTime), .known)
        // A lookup of the IP ends with the record; one for another IP does not take it.
        guard case .ask(let token) = service.lookUp("fd77:6f77::2", token: 1, now: Timestamp(nanoseconds: 0), completion: { _ in }) else {
            return XCTFail("expected a question")
        }
        guard case .done = service.answered(token, record: record, now: Timestamp(nanoseconds: 0)) else { return XCTFail("not done") }
        guard case .ask(let other) = service.lookUp("fd77:6f77::3", token: 2, now: Timestamp(nanoseconds: 0), completion: { _ in }) else {
            return XCTFail("expected a question")
        }
        guard case .waiting = service.answered(other, record: record, now: Timestamp(nanoseconds: 0)) else {
            return XCTFail("a record for another IP must not answer")
        }
    }
}
