import NIOCore
import XCTest

@testable import WOWKit

/// The name service's records and its state without I/O: what is believed, kept, handed over and remembered.
final class NameServiceTests: XCTestCase {
    private let now: Int64 = 1_800_000_000
    private lazy var authority = NetworkAuthorityKey.deterministic(name: "lab", seed: Array("names".utf8),
                                                                   network: NetworkID(bytes: [UInt8](repeating: 7, count: NetworkID.byteCount))!,
                                                                   now: now - 100)

    private func member(_ name: String, ip: UInt32? = nil, of key: NetworkAuthorityKey? = nil,
                        revoked: Set<CertificateFingerprint> = []) throws -> NodeCredentials {
        let key = key ?? authority
        let made = try key.member(name: name, identity: .deterministic(seed: Array("\(name)-\(key.authority.name)".utf8)),
                                  virtualIPs: ip.map { [VirtualIP($0)] } ?? [], notBefore: now - 60, notAfter: now + 86_400,
                                  serial: 1)
        return try NodeCredentials(identity: made.identity, certificate: made.certificate, authority: made.authority,
                                   revoked: revoked)
    }

    func testAFreshRecordIsKeptAndOnlyANewerOneReplacesIt() throws {
        let keeper = try member("keeper")
        let beta = try member("Beta", ip: 0x6440_0002)
        var service = NameService()
        let first = NameRecord(credentials: beta, at: now)
        XCTAssertEqual(service.keep(first, credentials: keeper, unixTime: now), .new)
        XCTAssertEqual(service.keep(first, credentials: keeper, unixTime: now), .known)
        XCTAssertEqual(service.keep(NameRecord(credentials: beta, at: now - 10), credentials: keeper, unixTime: now), .known)
        XCTAssertEqual(service.record(forKey: "beta", unixTime: now), first)
        XCTAssertEqual(service.record(forKey: "BETA", unixTime: now)?.address, beta.address)
        let newer = NameRecord(credentials: beta, at: now + 60)
        XCTAssertEqual(service.keep(newer, credentials: keeper, unixTime: now + 60), .new)
        XCTAssertEqual(service.record(forKey: "beta", unixTime: now + 60), newer)
        // Past its lifetime it answers nothing, and a sweep forgets it.
        XCTAssertNil(service.record(forKey: "beta", unixTime: now + 60 + NameRecord.lifetime + 1))
        service.sweep(unixTime: now + 60 + NameRecord.lifetime + 1)
        XCTAssertTrue(service.stored.isEmpty)
    }

    /// A member cannot claim another's name: a certificate with that name from another authority, or the
    /// right certificate signed by another key, is refused; so are replays past the lifetime, records from the
    /// future, and revoked certificates.
    func testRecordsThatAMemberCouldNotHaveMadeAreRefused() throws {
        let keeper = try member("keeper")
        let beta = try member("beta", ip: 0x6440_0002)
        let mallory = try member("mallory")
        var service = NameService()

        let elsewhere = NetworkAuthorityKey.deterministic(name: "other", seed: Array("other".utf8),
                                                          network: NetworkID(bytes: [UInt8](repeating: 9, count: NetworkID.byteCount))!,
                                                          now: now - 100)
        let foreignBeta = try member("beta", ip: 0x6440_0002, of: elsewhere)
        guard case .refused(.certificate(.wrongNetwork)) = service.keep(NameRecord(credentials: foreignBeta, at: now),
                                                                         credentials: keeper, unixTime: now) else {
            return XCTFail("a certificate of another network was kept")
        }
        let stolen = NameRecord(certificate: beta.certificate, publishedAt: now,
                                signature: mallory.identity.sign(NameRecord.signedBytes(beta.certificate, publishedAt: now)))
        XCTAssertEqual(service.keep(stolen, credentials: keeper, unixTime: now), .refused(.badSignature))
        var altered = NameRecord(credentials: beta, at: now)
        altered.publishedAt += 1
        XCTAssertEqual(service.keep(altered, credentials: keeper, unixTime: now), .refused(.badSignature))
        XCTAssertEqual(service.keep(NameRecord(credentials: beta, at: now - NameRecord.lifetime - 1), credentials: keeper,
                                    unixTime: now), .refused(.stale))
        XCTAssertEqual(service.keep(NameRecord(credentials: beta, at: now + NameRecord.clockSkew + 1), credentials: keeper,
                                    unixTime: now), .refused(.fromTheFuture))
        let strict = try member("keeper", revoked: [beta.certificate.fingerprint])
        guard case .refused(.certificate(.revoked)) = service.keep(NameRecord(credentials: beta, at: now), credentials: strict,
                                                                   unixTime: now) else {
            return XCTFail("a revoked certificate's record was kept")
        }
        XCTAssertTrue(service.stored.isEmpty)
        XCTAssertEqual(NameRecordRefusal.badSignature.reason, "name_bad_signature")
    }

    func testMessagesRoundTripAndEveryCutPayloadIsRejected() throws {
        let beta = try member("beta", ip: 0x6440_0002)
        let record = NameRecord(credentials: beta, at: now)
        let messages: [NameMessage] = [.put(record, isReplica: false), .put(record, isReplica: true),
                                       .get(token: 42, name: "beta"), .answer(token: 42, record: record),
                                       .answer(token: 43, record: nil)]
        for message in messages {
            let bytes = Array(message.encoded().readableBytesView)
            XCTAssertEqual(try NameMessage.decode(ByteBuffer(bytes: bytes), type: message.payloadType), message)
            for length in 0..<bytes.count {
                XCTAssertThrowsError(try NameMessage.decode(ByteBuffer(bytes: bytes[..<length]), type: message.payloadType),
                                     "\(message) cut to \(length)")
            }
            XCTAssertThrowsError(try NameMessage.decode(ByteBuffer(bytes: bytes + [0]), type: message.payloadType))
        }
        XCTAssertThrowsError(try NameMessage.decode(ByteBuffer(bytes: [2] + Array(NameMessage.put(record, isReplica: false)
            .encoded().readableBytesView.dropFirst())), type: .namePut))
        var tooLong = ByteBuffer(bytes: [0])
        tooLong.writeInteger(UInt16(4000), endianness: .big)
        tooLong.writeBytes([UInt8](repeating: 1, count: 4000))
        XCTAssertThrowsError(try NameMessage.decode(tooLong, type: .namePut))
    }

    func testLookupsOfOneNameShareOneQuestionAreRememberedAndTimeOutAfterTheirTries() throws {
        let beta = try member("beta", ip: 0x6440_0002)
        var service = NameService()
        var outcomes: [String] = []
        let start = Timestamp(nanoseconds: 0)
        guard case .ask(let token) = service.lookUp("Beta", token: 7, now: start, completion: { outcomes.append("a \($0)") }) else {
            return XCTFail("the first lookup must ask")
        }
        guard case .joined = service.lookUp("beta", token: 8, now: start, completion: { outcomes.append("b \($0)") }) else {
            return XCTFail("a second lookup of the same name must wait for the first")
        }
        XCTAssertEqual(service.name(ofLookup: token), "beta")
        // An answer about another name does not end it.
        guard case .waiting = service.answered(token, record: NameRecord(credentials: try member("gamma"), at: now), now: start) else {
            return XCTFail("an answer about another name must not end the lookup")
        }
        let record = NameRecord(credentials: beta, at: now)
        guard case .done(let found) = service.answered(token, record: record, now: start) else { return XCTFail("found") }
        for completion in found { completion(.success(record)) }
        XCTAssertEqual(outcomes.count, 2)
        guard case .answered(let remembered) = service.lookUp("beta", token: 9, now: start + .seconds(59), completion: { _ in }) else {
            return XCTFail("a found record is remembered")
        }
        XCTAssertEqual(remembered, record)
        guard case .ask = service.lookUp("beta", token: 10, now: start + .seconds(61), completion: { _ in }) else {
            return XCTFail("a record is asked for again after cacheFor")
        }
        // A name nobody answers: two more tries, then the lookup fails.
        var failed = 0
        guard case .ask(let silent) = service.lookUp("zed", token: 11, now: start, completion: { if case .failure = $0 { failed += 1 } }) else {
            return XCTFail("must ask")
        }
        XCTAssertEqual(service.timedOut(silent).askAgain, 2)
        // The second try asks both nodes beside the key: one "nobody" is not the answer yet.
        XCTAssertEqual(NameService.modes(forTry: 2), [.left, .right])
        guard case .waiting = service.answered(silent, record: nil, now: start) else { return XCTFail("one of two said nobody") }
        XCTAssertEqual(service.timedOut(silent).askAgain, 3)
        let (again, completions) = service.timedOut(silent)
        XCTAssertNil(again)
        for completion in completions { completion(.failure(NameLookupTimeout(name: "zed"))) }
        XCTAssertEqual(failed, 1)
        XCTAssertNil(service.name(ofLookup: silent))

        // The nearest node alone saying "nobody" sends the lookup to both nodes beside the key at once; both
        // saying so ends it with nobody (remembered for negativeCacheFor).
        guard case .ask(let unknown) = service.lookUp("zoe", token: 12, now: start, completion: { _ in }) else { return XCTFail("must ask") }
        guard case .askAgain(try: 2) = service.answered(unknown, record: nil, now: start) else { return XCTFail("ask beside the key") }
        guard case .waiting = service.answered(unknown, record: nil, now: start) else { return XCTFail("one of two") }
        guard case .done(let ended) = service.answered(unknown, record: nil, now: start), ended.count == 1 else {
            return XCTFail("both said nobody")
        }
        guard case .answered(nil) = service.lookUp("zoe", token: 13, now: start + .seconds(4), completion: { _ in }) else {
            return XCTFail("nobody is remembered for a while")
        }
    }

    func testRecordsGoToThePeerNearestTheirKeyWhenItIsNearerThanUsOnce() throws {
        let keeper = try member("keeper")
        var service = NameService()
        var records: [NameRecord] = []
        for index in 0..<40 {
            let record = NameRecord(credentials: try member("m\(index)"), at: now)
            records.append(record)
            XCTAssertEqual(service.keep(record, credentials: keeper, unixTime: now), .new)
        }
        let network = authority.authority.network
        let local = Address.hashing("local"), peer = Address.hashing("peer")
        let handed = service.handovers(from: local, network: network) { _ in peer }
        let expected = records.filter {
            let key = NameRecord.ringKey(forKey: $0.key, network: network)
            return key.distance(to: peer) < key.distance(to: local)
        }
        XCTAssertFalse(expected.isEmpty)
        XCTAssertTrue(handed.allSatisfy { $0.to == peer })
        XCTAssertEqual(Set(handed.map(\.record.key)), Set(expected.map(\.key)))
        XCTAssertTrue(service.handovers(from: local, network: network) { _ in peer }.isEmpty, "handed once")
        XCTAssertTrue(service.handovers(from: local, network: network) { _ in nil }.isEmpty, "no peer, nothing to hand")
    }

    /// Where this node is the nearest to a record's key, its ring neighbours keep replicas: one that joined beside
    /// it after the record came gets one too (the record would die with this node otherwise), once.
    func testWhereThisNodeIsNearestItsNeighboursGetReplicasOnce() throws {
        let keeper = try member("keeper")
        var service = NameService()
        let record = NameRecord(credentials: try member("m1"), at: now)
        XCTAssertEqual(service.keep(record, credentials: keeper, unixTime: now), .new)
        let network = authority.authority.network
        let local = Address.hashing("local"), left = Address.hashing("left"), right = Address.hashing("right")
        XCTAssertEqual(service.handovers(from: local, network: network, neighbours: [left]) { _ in nil }.map(\.to), [left])
        XCTAssertEqual(service.handovers(from: local, network: network, neighbours: [left, right]) { _ in nil }.map(\.to),
                       [right], "a new neighbour: only it")
        XCTAssertTrue(service.handovers(from: local, network: network, neighbours: [left, right]) { _ in nil }.isEmpty)
    }
}
