import Crypto
import NIOCore
@testable import WOWKit
import XCTest

/// What a secured node makes of packets from remotes without an edge: only an init with the network's
/// admission MAC makes one; the rest is dropped, and answered a few times a second at most.
final class StrangerAdmissionTests: XCTestCase {
    private let network = TestNetwork()

    private func init_(from credentials: NodeCredentials, seed: UInt64 = 1) throws -> ByteBuffer {
        let end = ChannelEnd(credentials, seed: seed)
        return try XCTUnwrap(end.handshake().frames.first)
    }

    func testAMembersInitIsAdmittedAndNothingElseIs() throws {
        let bob = try network.member("bob")
        var strangers = StrangerAdmission()
        let now = Timestamp.zero
        let genuine = try init_(from: try network.member("alice"))
        XCTAssertEqual(strangers.judge(genuine, bob, at: now).admission, .accept)
        XCTAssertNil(strangers.judge(genuine, bob, at: now).refusal)

        // Random bytes, a truncated packet, a response or refusal out of nowhere: dropped, unanswered.
        XCTAssertEqual(strangers.judge(ByteBuffer(bytes: [0x7F, 0x3A, 0x11, 0x00]), bob, at: now).admission, .drop)
        XCTAssertEqual(strangers.judge(ByteBuffer(bytes: [1]), bob, at: now).admission, .drop)
        XCTAssertEqual(strangers.judge(ByteBuffer(bytes: [1, SecureFrame.responseKind, 0, 0]), bob, at: now).admission, .drop)
        XCTAssertEqual(strangers.judge(ByteBuffer(bytes: [1, SecureFrame.refusedKind, 1]), bob, at: now).admission, .drop)
    }

    /// The admission MAC is HMAC-SHA256 under SHA-256 of the label and the authority's key (truncated to 16
    /// bytes), computed from key blocks made once: the same bytes as swift-crypto's `HMAC`, whatever the length.
    func testTheAdmissionMACIsHMACSHA256UnderTheAuthoritysKey() throws {
        let authority = network.authority
        let admission = AdmissionKey(authority: authority)
        let key = SymmetricKey(data: SHA256.hash(data: AdmissionKey.label + authority.publicKey))
        var random = SeededRandom(seed: 9)
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300, 370, 1_000] {
            let message = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
            XCTAssertEqual(message.withUnsafeBytes { Array(admission.code($0)) }, expected, "\(length) bytes")
            XCTAssertEqual(message.withUnsafeBytes { admission.mac($0) }, Array(expected.prefix(AdmissionKey.macSize)))
        }
    }

    func testAnInitsLayoutIsCheckedBeforeItsMAC() throws {
        var genuine = try init_(from: try network.member("alice"))
        XCTAssertTrue(AdmissionKey.hasInitLayout(genuine))
        XCTAssertFalse(AdmissionKey.hasInitLayout(ByteBuffer(bytes: [1, SecureFrame.initKind] + [UInt8](repeating: 0xAB, count: 368))))
        XCTAssertFalse(AdmissionKey.hasInitLayout(ByteBuffer(bytes: [1, SecureFrame.initKind, 0])))
        genuine.writeInteger(UInt8(0))
        XCTAssertFalse(AdmissionKey.hasInitLayout(genuine), "one byte too many")
    }

    func testOutsidersAreToldWhyAtMostTenTimesASecond() throws {
        let bob = try network.member("bob")
        let foreign = TestNetwork(id: 9)
        let outsider = try init_(from: try foreign.member("eve"))
        var strangers = StrangerAdmission()
        var now = Timestamp.zero
        let (admission, refusal) = strangers.judge(outsider, bob, at: now)
        XCTAssertEqual(refusal, .wrongNetwork(name: "eve", expected: network.id, got: foreign.id))
        guard case .reply(let answer) = admission else { return XCTFail("\(admission)") }
        XCTAssertEqual(try SecureFrame.refusal(in: answer).code, refusal?.code)

        // Plaintext (a node without security) and sealed frames (a member whose session is gone) are answered
        // too, from the same budget: 10 at once, then 10 a second.
        var answers = 1
        let plaintext = ByteBuffer(bytes: [1, 0x04, 0, 0, 0, 0, 0, 0, 0, 1])
        let sealed = ByteBuffer(bytes: [1, SecureFrame.sealedKind, 0, 0, 0, 42] + [UInt8](repeating: 0, count: 40))
        for packet in [plaintext, sealed, outsider] {
            for _ in 0..<20 where strangers.judge(packet, bob, at: now).admission != .drop { answers += 1 }
        }
        XCTAssertEqual(answers, StrangerAdmission.repliesPerSecond)
        now = now + .milliseconds(500)
        guard case .reply(let unknown) = strangers.judge(sealed, bob, at: now).admission else { return XCTFail() }
        XCTAssertEqual(Array(unknown.readableBytesView), [1, SecureFrame.unknownSessionKind, 0, 0, 0, 42])
        var later = 1
        for _ in 0..<20 where strangers.judge(plaintext, bob, at: now).admission != .drop { later += 1 }
        XCTAssertEqual(later, StrangerAdmission.repliesPerSecond / 2, "half a second refills half the budget")
    }

    func testAnInitSignedUnderAnotherAuthorityOfTheSameNetworkIsNotAdmitted() throws {
        let bob = try network.member("bob")
        let impostor = TestNetwork(id: 1, keySeed: 66)
        var strangers = StrangerAdmission()
        let (admission, refusal) = strangers.judge(try init_(from: try impostor.member("mallory")), bob, at: .zero)
        XCTAssertNotEqual(admission, .accept)
        XCTAssertEqual(refusal, .badCertificateSignature(name: "mallory"))
    }
}

/// Cookies: a busy node admits an init only with its cookie's MAC, and a real initiator gets there.
final class CookieTests: XCTestCase {
    private let network = TestNetwork()

    func testABusyNodeAsksForACookieAndTheInitiatorComesBackWithIt() throws {
        let bob = try network.member("bob")
        var strangers = StrangerAdmission(secret: SymmetricKey(data: [UInt8](repeating: 7, count: 32)))
        let now = Timestamp.zero + .seconds(1_000)
        let other = try XCTUnwrap(ChannelEnd(try network.member("carol"), seed: 3).handshake().frames.first)
        // The same init again from its own source is its initiator sending it again: judged, not a replay.
        for _ in 0..<StrangerAdmission.admissionBurst {
            XCTAssertEqual(strangers.judge(other, bob, from: { "udp://198.18.0.9:4000" }, at: now).admission, .accept)
        }
        XCTAssertTrue(strangers.isBusy)

        let alice = ChannelEnd(try network.member("alice"), seed: 1)
        alice.now = now
        let first = try XCTUnwrap(alice.handshake().frames.first)
        let (admission, refusal) = strangers.judge(first, bob, from: { "udp://198.18.0.1:4000" }, at: now)
        XCTAssertNil(refusal)
        guard case .reply(let cookieFrame) = admission else { return XCTFail("\(admission)") }
        XCTAssertEqual(cookieFrame.readableBytes, 2 + 4 + 16, "smaller than the init it answers")
        XCTAssertLessThan(cookieFrame.readableBytes, first.readableBytes)

        // The initiator sends the same init again with the cookie's MAC: admitted from its own source only.
        let again = try XCTUnwrap(alice.receive(cookieFrame).frames.first)
        XCTAssertEqual(again.readableBytes, first.readableBytes)
        XCTAssertEqual(Array(again.readableBytesView.dropLast(16)), Array(first.readableBytesView.dropLast(16)),
                       "only the cookie MAC changed")
        XCTAssertEqual(strangers.judge(again, bob, from: { "udp://198.18.0.1:4000" }, at: now).admission, .accept)
        // From another source it is a replay.
        XCTAssertEqual(strangers.judge(again, bob, from: { "udp://198.18.0.66:4000" }, at: now).admission, .drop)
        // A cookie is bound to its source: another member's init with alice's cookie, from elsewhere, gets its own.
        let dave = ChannelEnd(try network.member("dave"), seed: 4)
        let epoch = now.nanoseconds / StrangerAdmission.cookieEpoch.nanoseconds
        let borrowed = AdmissionKey.withCookie(try XCTUnwrap(dave.handshake().frames.first),
                                               cookie: strangers.cookie(for: "udp://198.18.0.1:4000", epoch: epoch))
        guard case .reply = strangers.judge(borrowed, bob, from: { "udp://198.18.0.66:4000" }, at: now).admission else {
            return XCTFail("a cookie of another source must not do")
        }
        // A second later the node is not busy any more: no cookie needed.
        XCTAssertEqual(strangers.judge(first, bob, from: { "udp://198.18.0.1:4000" }, at: now + .seconds(1)).admission,
                       .accept)
    }

    /// A genuine init replayed from other sources is dropped with no answer and no admission spent; the
    /// initiator's own copies are judged as before; an init forgotten long ago is judged as new.
    func testAReplayedInitFromAnotherSourceIsDroppedWithoutWork() throws {
        let bob = try network.member("bob")
        var strangers = StrangerAdmission()
        let now = Timestamp.zero + .seconds(1_000)
        let genuine = try XCTUnwrap(ChannelEnd(try network.member("alice"), seed: 1).handshake().frames.first)
        XCTAssertEqual(strangers.judge(genuine, bob, from: { "udp://198.18.0.2:4000" }, at: now).admission, .accept)
        for index in 0..<1_000 {
            XCTAssertEqual(strangers.judge(genuine, bob, from: { "udp://198.18.128.\(index % 250):\(1_024 + index)" },
                                           at: now).admission, .drop)
        }
        XCTAssertEqual(strangers.replaysDropped, 1_000)
        XCTAssertFalse(strangers.isBusy, "replays spend no admissions")
        XCTAssertEqual(strangers.judge(genuine, bob, from: { "udp://198.18.0.2:4000" }, at: now).admission, .accept)
        // A member's fresh init is admitted at once, replays or not.
        let fresh = try XCTUnwrap(ChannelEnd(try network.member("carol"), seed: 2).handshake().frames.first)
        XCTAssertEqual(strangers.judge(fresh, bob, from: { "udp://198.18.0.3:4000" }, at: now).admission, .accept)
        // Once rememberedInits later inits came, the first is forgotten: judged as new (the handshake itself
        // never lets a replayed init replace a session).
        let carol = try network.member("carol")
        for seed in 0..<UInt64(StrangerAdmission.rememberedInits) {
            let other = try XCTUnwrap(ChannelEnd(carol, seed: 100 + seed).handshake().frames.first)
            _ = strangers.judge(other, bob, from: { "udp://198.18.0.4:4000" }, at: now + .seconds(3_600))
        }
        XCTAssertEqual(strangers.judge(genuine, bob, from: { "udp://198.18.0.66:4000" }, at: now + .seconds(3_601)).admission,
                       .accept)
    }

    func testATokenBucketSpreadsEventsAtItsRate() {
        var bucket = TokenBucket(rate: 100, burst: 20)
        let start = Timestamp.zero + .seconds(5)
        XCTAssertEqual((0..<50).filter { _ in bucket.take(at: start) }.count, 20, "the burst at once")
        XCTAssertFalse(bucket.take(at: start + .milliseconds(5)))
        XCTAssertTrue(bucket.take(at: start + .milliseconds(10)), "one more every 10 ms")
        XCTAssertFalse(bucket.take(at: start + .milliseconds(10)))
        XCTAssertEqual((0..<50).filter { _ in bucket.take(at: start + .seconds(10)) }.count, 20, "never more than the burst")
    }

    func testTheHandshakeCompletesWithTheCookiedInitAndAStrayCookieIsDropped() throws {
        let alice = ChannelEnd(try network.member("alice"), seed: 1)
        let bob = ChannelEnd(try network.member("bob"), seed: 2)
        let first = try XCTUnwrap(alice.handshake().frames.first)
        let index = try HandshakeMessage.decode(first, kind: SecureFrame.initKind).senderIndex
        let cookie = [UInt8](repeating: 0xC0, count: 16)
        XCTAssertTrue(alice.receive(SecureFrame.cookie(cookie, forInit: index &+ 1)).frames.isEmpty, "not our init")
        let again = try XCTUnwrap(alice.receive(SecureFrame.cookie(cookie, forInit: index)).frames.first)
        XCTAssertTrue(AdmissionKey.hasCookieMAC(again, cookie: cookie))
        XCTAssertTrue(alice.receive(SecureFrame.cookie(cookie, forInit: index)).frames.isEmpty, "the same cookie once")
        let response = try XCTUnwrap(bob.receive(again).frames.first)
        XCTAssertEqual(alice.receive(response).established.count, 1)
        XCTAssertTrue(alice.channel.isEstablished)
    }
}
