import Crypto
import NIOCore
import XCTest

@testable import WOWKit

/// Two secure channels driven against each other on a virtual clock: the handshake, sealing and opening,
/// tampering, replays, refusals, simultaneous inits, rekeys and restarts.
final class SecureChannelTests: XCTestCase {
    // MARK: Handshake

    func testHandshakeEstablishesBothSidesWithThePeersCertificate() throws {
        let pair = try ChannelPair()
        let first = pair.a.send(Array("one".utf8))
        XCTAssertEqual(first.frameKinds, [SecureFrame.initKind])
        XCTAssertFalse(pair.a.channel.isEstablished)

        let response = pair.b.receive(first.frames[0])
        XCTAssertEqual(response.frameKinds, [SecureFrame.responseKind])
        XCTAssertTrue(response.established.isEmpty, "the responder waits for the initiator's first sealed frame")
        XCTAssertFalse(pair.b.channel.isEstablished)

        let confirmed = pair.a.receive(response.frames[0])
        XCTAssertEqual(confirmed.established, [pair.b.credentials.certificate])
        XCTAssertEqual(confirmed.frameKinds, [SecureFrame.sealedKind], "the queued plaintext follows")
        XCTAssertEqual(pair.a.channel.peer, pair.b.credentials.certificate)

        let opened = pair.b.receive(confirmed.frames[0])
        XCTAssertEqual(opened.established, [pair.a.credentials.certificate])
        XCTAssertEqual(opened.delivered, [Array("one".utf8)])
        XCTAssertEqual(pair.b.channel.peer, pair.a.credentials.certificate)
        XCTAssertTrue(pair.a.channel.isEstablished && pair.b.channel.isEstablished)

        let back = pair.bSends(Array("two".utf8))
        XCTAssertEqual(back.a.delivered, [Array("two".utf8)])
        XCTAssertTrue(back.a.established.isEmpty && back.b.established.isEmpty)
    }

    func testPlaintextQueuedBeforeTheHandshakeIsDeliveredInOrder() throws {
        let pair = try ChannelPair()
        let messages = (0..<10).map { Array("message \($0)".utf8) }
        var frames: [ByteBuffer] = []
        for message in messages { frames += pair.a.send(message).frames }
        XCTAssertEqual(frames.count, 1, "one init while the handshake is under way")
        XCTAssertEqual(pair.a.channel.queuedCount, messages.count)

        let (outA, outB) = pair.settle(toB: frames)
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outB.established.count, 1)
        XCTAssertEqual(outB.delivered, messages)
        XCTAssertEqual(pair.a.channel.queuedCount, 0)
    }

    func testTheResponderSendsQueuedPlaintextUnderTheNewSession() throws {
        let pair = try ChannelPair()
        let init_ = pair.a.handshake().frames
        let reply = pair.b.receive(init_[0])
        XCTAssertEqual(reply.frameKinds, [SecureFrame.responseKind])
        // Before the initiator's first frame, the responder can already seal under the answered session.
        let early = pair.b.send(Array("early".utf8))
        XCTAssertEqual(early.frameKinds, [SecureFrame.sealedKind])
        let (outA, _) = pair.settle(toA: reply.frames + early.frames)
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outA.delivered, [Array("early".utf8)])
    }

    func testAFullQueueDropsTheOldestPlaintext() throws {
        var settings = ChannelEnd.defaultSettings
        settings.maximumQueued = 3
        let pair = try ChannelPair(settings: settings)
        var drops: [String] = []
        var frames: [ByteBuffer] = []
        for index in 0..<5 {
            let outputs = pair.a.send([UInt8(index)])
            drops += outputs.drops
            frames += outputs.frames
        }
        XCTAssertEqual(drops, ["handshake_queue_full", "handshake_queue_full"])
        let (_, outB) = pair.settle(toB: frames)
        XCTAssertEqual(outB.delivered, [[2], [3], [4]])
    }

    func testAnUnansweredInitIsSentAgainAfterTheRetryInterval() throws {
        let pair = try ChannelPair()
        let first = pair.a.send([1]).frames
        XCTAssertEqual(first.count, 1)
        pair.advance(by: .milliseconds(500))
        XCTAssertTrue(pair.a.send([2]).frames.isEmpty, "no retry before handshakeRetry")
        pair.advance(by: .milliseconds(500))
        let again = pair.a.send([3]).frames
        XCTAssertEqual(again.count, 1)
        XCTAssertEqual(again.first, first.first, "the same init again")

        // Both copies arrive: the responder answers the second with the same response, which is then stray.
        let firstReply = pair.b.receive(first[0])
        let secondReply = pair.b.receive(again[0])
        XCTAssertEqual(firstReply.frames, secondReply.frames)
        XCTAssertEqual(pair.a.receive(firstReply.frames[0]).established.count, 1)
        XCTAssertEqual(pair.a.receive(secondReply.frames[0]).drops, ["stray_handshake_response"])
    }

    func testAnUnansweredInitWithPlaintextBehindItIsRetransmittedWithBackoffThenGivenUp() throws {
        let pair = try ChannelPair()
        let settings = pair.a.settings
        XCTAssertNil(pair.a.channel.retransmitDue(settings), "nothing waits")
        let first = pair.a.send([1]).frames
        let start = pair.now
        var sentAt: [Duration] = []
        // Driven as the node's timer drives it: at each due time, and never earlier.
        while let due = pair.a.channel.retransmitDue(settings), due - start < .seconds(200) {
            pair.advance(by: due - pair.now - .milliseconds(1))
            XCTAssertTrue(Array(pair.a.channel.retransmit(pair.a.environment)).isEmpty, "not before it is due")
            pair.advance(by: .milliseconds(1))
            let outputs = Array(pair.a.channel.retransmit(pair.a.environment))
            if outputs.frames.isEmpty {
                // Unanswered for reject_after: what waited is dropped, and nothing is due any more.
                XCTAssertEqual(outputs.drops, ["handshake_timeout"])
                break
            }
            XCTAssertEqual(outputs.frames, first, "the same init again")
            sentAt.append(pair.now - start)
        }
        XCTAssertEqual(Array(sentAt.prefix(5)), [.seconds(1), .seconds(3), .seconds(7), .seconds(15), .seconds(23)])
        XCTAssertTrue(sentAt.allSatisfy { $0 < settings.rejectAfter })
        XCTAssertEqual(sentAt.count, 24, "every 8 s once the backoff is done, up to reject_after (180 s): \(sentAt)")
        XCTAssertNil(pair.a.channel.retransmitDue(settings))
        XCTAssertEqual(pair.a.channel.queuedCount, 0)
        XCTAssertTrue(pair.a.channel.isIdle(at: pair.now, settings: settings), "the node forgets it")
    }

    func testARetransmittedInitThatGetsThroughDeliversWhatWaited() throws {
        let pair = try ChannelPair()
        _ = pair.a.send([1]).frames  // lost
        _ = pair.a.send([2])
        pair.advance(by: .seconds(1))
        let again = Array(pair.a.channel.retransmit(pair.a.environment)).frames
        XCTAssertEqual(again.count, 1)
        let (_, outB) = pair.settle(toB: again)
        XCTAssertEqual(outB.delivered, [[1], [2]])
        XCTAssertNil(pair.a.channel.retransmitDue(pair.a.settings), "answered: nothing is due")
        // A rekey of an established session has nothing waiting behind it: sends go under the old session.
        pair.advance(by: pair.a.settings.rekeyAfter)
        let rekey = pair.a.send([3])
        XCTAssertEqual(rekey.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
        XCTAssertNil(pair.a.channel.retransmitDue(pair.a.settings))
    }

    /// A joiner's first init whose response found no way back goes again when its place in the ring changes
    /// (`resendInit`), not only at the retransmit timer: at most once per `wait`, without adding to the backoff,
    /// and only while plaintext waits behind it.
    func testAnUnansweredInitIsResentEarlyOncePerWaitWithoutBackoff() throws {
        let pair = try ChannelPair()
        let wait = Duration.milliseconds(250)
        XCTAssertTrue(Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: wait)).isEmpty, "no init out")
        let first = pair.a.send([1]).frames  // its response is lost
        pair.advance(by: .milliseconds(200))
        XCTAssertTrue(Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: wait)).isEmpty, "too soon")
        pair.advance(by: .milliseconds(100))
        XCTAssertEqual(Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: wait)).frames, first)
        XCTAssertEqual(pair.a.channel.retransmitDue(pair.a.settings), pair.now + pair.a.settings.handshakeRetry,
                       "the timer's backoff starts over from the resend, not doubled")
        XCTAssertTrue(Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: wait)).isEmpty,
                      "once per wait")
        pair.advance(by: wait)
        let again = Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: wait)).frames
        XCTAssertEqual(again, first)
        let (_, outB) = pair.settle(toB: again)
        XCTAssertEqual(outB.delivered, [[1]], "what waited goes once the response gets back")
        XCTAssertTrue(Array(pair.a.channel.resendInit(pair.a.environment, ifUnansweredFor: .zero)).isEmpty, "answered")
    }

    func testAnUnreachablePeerEndsAFirstHandshakeButNotARekey() throws {
        let pair = try ChannelPair()
        _ = pair.a.send([1])
        _ = pair.a.send([2])
        XCTAssertEqual(Array(pair.a.channel.peerUnreachable()).drops, ["handshake_unreachable", "handshake_unreachable"])
        XCTAssertNil(pair.a.channel.retransmitDue(pair.a.settings))
        XCTAssertEqual(pair.a.channel.queuedCount, 0)
        // Later data starts a new handshake.
        let again = pair.a.send([3])
        XCTAssertEqual(again.frameKinds, [SecureFrame.initKind])
        let (_, outB) = pair.settle(toB: again.frames)
        XCTAssertEqual(outB.delivered, [[3]])
        // A rekey under way with a working session: nothing is dropped, nothing stops.
        pair.advance(by: pair.a.settings.rekeyAfter)
        XCTAssertEqual(pair.a.send([4]).frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
        XCTAssertTrue(Array(pair.a.channel.peerUnreachable()).isEmpty)
        XCTAssertTrue(pair.a.channel.isEstablished)
    }

    // MARK: Sealing and opening

    func testRandomPlaintextsRoundTripExactly() throws {
        let pair = try ChannelPair()
        pair.connect()
        var random = SeededRandom(seed: 42)
        for iteration in 0..<300 {
            let plaintext = random.bytes(random.int(0...1400))
            let fromA = iteration % 2 == 0
            let frame = fromA ? pair.a.seal(plaintext) : pair.b.seal(plaintext)
            XCTAssertEqual(frame.readableBytes, plaintext.count + SecureFrame.sealedOverhead)
            XCTAssertNotEqual(Array(frame.readableBytesView.suffix(plaintext.count + 16).prefix(plaintext.count)),
                              plaintext.isEmpty ? [0] : plaintext, "the plaintext is not in the frame as is")
            let outputs = fromA ? pair.b.receive(frame) : pair.a.receive(frame)
            XCTAssertEqual(outputs.delivered, [plaintext], "iteration \(iteration)")
            XCTAssertEqual(outputs.count, 1)
        }
    }

    func testAnyChangedBitOrByteOfASealedFrameIsDroppedNeverDelivered() throws {
        let pair = try ChannelPair()
        pair.connect()
        var random = SeededRandom(seed: 7)
        var reasons: Set<String> = []
        for iteration in 0..<300 {
            let plaintext = random.bytes(random.int(0...1400))
            let frame = pair.a.seal(plaintext)
            let index = random.int(0...(frame.readableBytes - 1))
            // Half single-bit flips, half whole-byte changes.
            let mask = iteration % 2 == 0 ? UInt8(1) << UInt8(random.int(0...7)) : UInt8(random.int(1...255))
            let outputs = pair.b.receive(frame.changing(byteAt: index, xor: mask))
            XCTAssertTrue(outputs.delivered.isEmpty, "byte \(index) ^ \(mask): \(outputs)")
            XCTAssertTrue(outputs.established.isEmpty)
            XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "byte \(index): \(outputs)")
            reasons.formUnion(outputs.drops)
            // The damaged copy did not burn the counter: the genuine frame still opens.
            XCTAssertEqual(pair.b.receive(frame).delivered, [plaintext], "iteration \(iteration)")
        }
        XCTAssertTrue(reasons.contains("bad_tag"), "\(reasons)")
        XCTAssertTrue(reasons.isSubset(of: ["bad_tag", "bad_version", "unknown_session", "unknown_kind", "truncated",
                                            "trailing_bytes", "too_long", "replayed", "outside_replay_window",
                                            "invalid_text", "stale_unknown_session"]), "\(reasons)")
    }

    func testEveryChangedByteOfOneSealedFrameIsDropped() throws {
        let pair = try ChannelPair()
        pair.connect()
        let plaintext = Array("every byte of header, body and tag".utf8)
        let frame = pair.a.seal(plaintext)
        for index in 0..<frame.readableBytes {
            let outputs = pair.b.receive(frame.changing(byteAt: index, xor: 0x80))
            XCTAssertTrue(outputs.delivered.isEmpty, "byte \(index)")
            XCTAssertFalse(outputs.drops.isEmpty, "byte \(index): \(outputs)")
            if index >= SecureFrame.sealedHeaderSize - 8 {
                // Counter, ciphertext and tag are all authenticated.
                XCTAssertEqual(outputs.drops, ["bad_tag"], "byte \(index)")
            }
        }
        XCTAssertEqual(pair.b.receive(frame).delivered, [plaintext])
    }

    func testATruncatedSealedFrameIsDroppedAtEveryLength() throws {
        let pair = try ChannelPair()
        pair.connect()
        var random = SeededRandom(seed: 11)
        for _ in 0..<20 {
            let plaintext = random.bytes(random.int(0...200))
            let frame = pair.a.seal(plaintext)
            for length in 0..<frame.readableBytes {
                let outputs = pair.b.receive(frame.prefix(length))
                XCTAssertTrue(outputs.delivered.isEmpty, "length \(length)")
                XCTAssertFalse(outputs.drops.isEmpty, "length \(length)")
                if length < SecureFrame.sealedOverhead {
                    XCTAssertEqual(outputs.drops, ["truncated"], "length \(length)")
                }
            }
            XCTAssertEqual(pair.b.receive(frame).delivered, [plaintext])
        }
    }

    func testRandomGarbageFramesAreDroppedAndTheSessionKeepsWorking() throws {
        let pair = try ChannelPair()
        pair.connect()
        var random = SeededRandom(seed: 99)
        for iteration in 0..<300 {
            var garbage = random.bytes(random.int(0...1500))
            // Most garbage starts like a secure frame, so it reaches the frame parsers.
            if garbage.count >= 2, iteration % 4 != 0 {
                garbage[0] = WireFormat.version
                garbage[1] = UInt8(random.int(0x20...0x24))
            }
            for end in [pair.a, pair.b] {
                let outputs = end.receive(ByteBuffer(bytes: garbage))
                XCTAssertTrue(outputs.delivered.isEmpty && outputs.established.isEmpty, "\(garbage.prefix(8))")
                XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "\(outputs)")
            }
        }
        XCTAssertEqual(pair.aSends([1, 2, 3]).b.delivered, [[1, 2, 3]])
        XCTAssertEqual(pair.bSends([4, 5, 6]).a.delivered, [[4, 5, 6]])
    }

    // MARK: Tampered handshakes

    func testAnyChangedByteOfAnInitIsRefusedOrDropped() throws {
        let pair = try ChannelPair()
        let init_ = try XCTUnwrap(pair.a.handshake().frames.first)
        var random = SeededRandom(seed: 3)
        for iteration in 0..<300 {
            // Every byte but the cookie MAC (the last 16), which only a busy node's admission checks.
            let index = random.int(0...(init_.readableBytes - 1 - AdmissionKey.macSize))
            let mask = iteration % 2 == 0 ? UInt8(1) << UInt8(random.int(0...7)) : UInt8(random.int(1...255))
            let outputs = pair.b.receive(init_.changing(byteAt: index, xor: mask))
            XCTAssertFalse(outputs.frameKinds.contains(SecureFrame.responseKind), "byte \(index) ^ \(mask): answered")
            XCTAssertTrue(outputs.established.isEmpty && outputs.delivered.isEmpty)
            XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "byte \(index): \(outputs)")
            XCTAssertEqual(outputs.frameKinds.filter { $0 != SecureFrame.refusedKind && $0 != SecureFrame.unknownSessionKind },
                           [], "byte \(index)")
        }
        for length in 0..<init_.readableBytes {
            let outputs = pair.b.receive(init_.prefix(length))
            XCTAssertFalse(outputs.frameKinds.contains(SecureFrame.responseKind), "length \(length)")
            XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "length \(length)")
        }
        // The genuine init still completes the handshake (the initiator's empty frame confirms it at b).
        let (outA, outB) = pair.settle(toB: [init_])
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outB.established.count, 1)
        XCTAssertEqual(pair.aSends([9]).b.delivered, [[9]])
    }

    func testAnyChangedByteOfAResponseIsRefusedOrDropped() throws {
        let pair = try ChannelPair()
        let init_ = try XCTUnwrap(pair.a.handshake().frames.first)
        let response = try XCTUnwrap(pair.b.receive(init_).frames.first)
        var random = SeededRandom(seed: 5)
        for iteration in 0..<300 {
            let index = random.int(0...(response.readableBytes - 1))
            let mask = iteration % 2 == 0 ? UInt8(1) << UInt8(random.int(0...7)) : UInt8(random.int(1...255))
            let outputs = pair.a.receive(response.changing(byteAt: index, xor: mask))
            XCTAssertTrue(outputs.established.isEmpty, "byte \(index) ^ \(mask): \(outputs)")
            XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "byte \(index): \(outputs)")
            XCTAssertFalse(pair.a.channel.isEstablished)
        }
        for length in 0..<response.readableBytes {
            let outputs = pair.a.receive(response.prefix(length))
            XCTAssertTrue(outputs.established.isEmpty, "length \(length)")
            XCTAssertFalse(outputs.drops.isEmpty && outputs.refusals.isEmpty, "length \(length)")
        }
        XCTAssertEqual(pair.a.receive(response).established, [pair.b.credentials.certificate])
    }

    // MARK: Replay window

    func testAReplayedSealedFrameIsDropped() throws {
        let pair = try ChannelPair()
        pair.connect()
        let frame = pair.a.seal([1, 2, 3])
        XCTAssertEqual(pair.b.receive(frame).delivered, [[1, 2, 3]])
        XCTAssertEqual(pair.b.receive(frame).drops, ["replayed"])
        XCTAssertEqual(pair.b.receive(frame).drops, ["replayed"])
    }

    func testFramesReorderedWithinTheWindowAreAllAccepted() throws {
        let pair = try ChannelPair()
        pair.connect()
        let frames = (0..<2048).map { pair.a.seal([UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)]) }
        var random = SeededRandom(seed: 17)
        // The newest first, then the rest shuffled: every one is within 2048 of the newest.
        var order = Array(0..<2047).shuffled(using: &random)
        order.insert(2047, at: 0)
        var delivered = 0
        for index in order {
            let outputs = pair.b.receive(frames[index])
            XCTAssertEqual(outputs.delivered, [[UInt8(truncatingIfNeeded: index), UInt8(truncatingIfNeeded: index >> 8)]],
                           "frame \(index): \(outputs)")
            delivered += outputs.delivered.count
        }
        XCTAssertEqual(delivered, 2048)
        XCTAssertEqual(pair.b.receive(frames[1000]).drops, ["replayed"])
    }

    func testAFrameOlderThanTheWindowIsDropped() throws {
        let pair = try ChannelPair()
        pair.connect()
        // The handshake's "hello" used counter 0; these take 1...2050.
        let frames = (1...2050).map { pair.a.seal([UInt8(truncatingIfNeeded: $0)]) }
        let newest = frames.count - 1  // counter 2050
        XCTAssertEqual(pair.b.receive(frames[newest]).delivered.count, 1)
        XCTAssertEqual(pair.b.receive(frames[newest - 2048]).drops, ["outside_replay_window"], "2048 behind")
        XCTAssertEqual(pair.b.receive(frames[0]).drops, ["outside_replay_window"])
        XCTAssertEqual(pair.b.receive(frames[newest - 2047]).delivered.count, 1, "2047 behind is inside")
    }

    // MARK: Certificates

    /// Alice initiates with `alice`'s credentials to bob; returns both sides' outputs after the exchange.
    private func handshake(alice: NodeCredentials, bob: NodeCredentials, aliceExpects: Address? = nil,
                           bobExpects: Address? = nil) -> (a: [SecureChannel.Output], b: [SecureChannel.Output]) {
        let pair = ChannelPair(ChannelEnd(alice, seed: 1, expectedPeer: aliceExpects),
                               ChannelEnd(bob, seed: 2, expectedPeer: bobExpects))
        return pair.aSends(Array("hi".utf8))
    }

    /// The responder refuses with `expected`, sends a `refused` frame, and the initiator reports it.
    private func assertResponderRefuses(alice: NodeCredentials, bob: NodeCredentials, bobExpects: Address? = nil,
                                        _ expected: SecurityRefusal, file: StaticString = #filePath,
                                        line: UInt = #line) {
        let (outA, outB) = handshake(alice: alice, bob: bob, bobExpects: bobExpects)
        XCTAssertEqual(outB.refusals, [expected], file: file, line: line)
        XCTAssertEqual(outB.frameKinds, [SecureFrame.refusedKind], file: file, line: line)
        XCTAssertTrue(outA.established.isEmpty && outB.established.isEmpty && outB.delivered.isEmpty,
                      file: file, line: line)
        XCTAssertEqual(outA.frameKinds, [SecureFrame.initKind], "no data leaves unprotected", file: file, line: line)
        guard case .refusedByPeer(let code, let message)? = outA.refusals.first, outA.refusals.count == 1 else {
            return XCTFail("the initiator did not report the refusal: \(outA)", file: file, line: line)
        }
        XCTAssertEqual(code, expected.code, file: file, line: line)
        XCTAssertEqual(message, expected.description, file: file, line: line)
    }

    func testAnExpiredCertificateIsRefused() throws {
        let network = TestNetwork()
        let notAfter = TestNetwork.unixTime - 1
        let alice = try network.member("alice", notBefore: TestNetwork.unixTime - 1000, notAfter: notAfter)
        assertResponderRefuses(alice: alice, bob: try network.member("bob"), .expired(name: "alice", notAfter: notAfter))
    }

    func testANotYetValidCertificateIsRefused() throws {
        let network = TestNetwork()
        let notBefore = TestNetwork.unixTime + 60
        let alice = try network.member("alice", notBefore: notBefore, notAfter: notBefore + 1000)
        assertResponderRefuses(alice: alice, bob: try network.member("bob"),
                               .notYetValid(name: "alice", notBefore: notBefore))
    }

    func testACertificateOfAnotherNetworkIsRefused() throws {
        let ours = TestNetwork(id: 1), theirs = TestNetwork(id: 2)
        assertResponderRefuses(alice: try theirs.member("alice"), bob: try ours.member("bob"),
                               .wrongNetwork(name: "alice", expected: ours.id, got: theirs.id))
    }

    func testACertificateSignedByAnotherAuthorityIsRefused() throws {
        let ours = TestNetwork(id: 1), impostor = TestNetwork(id: 1, keySeed: 66)
        XCTAssertEqual(ours.id, impostor.id)
        XCTAssertNotEqual(ours.authority.publicKey, impostor.authority.publicKey)
        assertResponderRefuses(alice: try impostor.member("alice"), bob: try ours.member("bob"),
                               .badCertificateSignature(name: "alice"))
    }

    func testARevokedCertificateIsRefused() throws {
        let network = TestNetwork()
        let alice = try network.member("alice")
        var bob = try network.member("bob")
        bob.revoked = [alice.certificate.fingerprint]
        assertResponderRefuses(alice: alice, bob: bob,
                               .revoked(name: "alice", fingerprint: alice.certificate.fingerprint))
    }

    func testARevokedResponderIsRefusedByTheInitiator() throws {
        let network = TestNetwork()
        var alice = try network.member("alice")
        let bob = try network.member("bob")
        alice.revoked = [bob.certificate.fingerprint]
        assertInitiatorRefuses(alice: alice, bob: bob, .revoked(name: "bob", fingerprint: bob.certificate.fingerprint))
    }

    /// The initiator refuses the responder with `expected` and tells it in a `refused` frame.
    private func assertInitiatorRefuses(alice: NodeCredentials, bob: NodeCredentials, aliceExpects: Address? = nil,
                                        _ expected: SecurityRefusal, file: StaticString = #filePath,
                                        line: UInt = #line) {
        let (outA, outB) = handshake(alice: alice, bob: bob, aliceExpects: aliceExpects)
        XCTAssertEqual(outA.refusals, [expected], file: file, line: line)
        XCTAssertEqual(outA.frameKinds, [SecureFrame.initKind, SecureFrame.refusedKind], file: file, line: line)
        XCTAssertEqual(outB.refusals, [.refusedByPeer(code: expected.code, message: expected.description)],
                       file: file, line: line)
        XCTAssertTrue(outA.established.isEmpty && outB.established.isEmpty && outB.delivered.isEmpty,
                      file: file, line: line)
    }

    func testAnInitiatorRefusingAnExpiredResponderTellsIt() throws {
        let network = TestNetwork()
        let notAfter = TestNetwork.unixTime - 1
        let bob = try network.member("bob", notBefore: TestNetwork.unixTime - 1000, notAfter: notAfter)
        assertInitiatorRefuses(alice: try network.member("alice"), bob: bob, .expired(name: "bob", notAfter: notAfter))
    }

    func testAHandshakeSignedByAnotherKeyThanTheCertificatesIsRefused() throws {
        let network = TestNetwork()
        let alice = try network.member("alice")
        let bob = ChannelEnd(try network.member("bob"), seed: 2)
        let mallory = TestNetwork.identity("mallory")
        // Alice's genuine certificate, but the init is signed by mallory's key.
        let forged = HandshakeMessage.make(kind: SecureFrame.initKind, senderIndex: 1, receiverIndex: nil,
                                           ephemeral: [UInt8](repeating: 9, count: 32),
                                           certificate: alice.certificate.encoded, label: SecureChannel.initLabel,
                                           prefix: [], admission: alice.admissionKey, sign: mallory.sign)
        let outputs = bob.receive(forged)
        XCTAssertEqual(outputs.refusals, [.badHandshakeSignature(name: "alice")])
        XCTAssertEqual(outputs.frameKinds, [SecureFrame.refusedKind])
    }

    func testAnInitWithoutTheNetworksAdmissionMACIsRefusedWithoutASignatureCheck() throws {
        let network = TestNetwork()
        let alice = ChannelEnd(try network.member("alice"), seed: 1)
        let bob = ChannelEnd(try network.member("bob"), seed: 2)
        var init_ = try XCTUnwrap(alice.handshake().frames.first)
        XCTAssertTrue(bob.credentials.admissionKey.isValid(init_))
        // One bit of the MAC flipped: the certificate is genuine, the signature too, but nothing is verified.
        let last = init_.writerIndex - 1 - AdmissionKey.macSize  // the admission MAC's last byte
        init_.setInteger(init_.getInteger(at: last, as: UInt8.self)! ^ 1, at: last)
        let outputs = bob.receive(init_)
        XCTAssertEqual(outputs.refusals, [.badCertificateSignature(name: "alice")])
        XCTAssertEqual(outputs.frameKinds, [SecureFrame.refusedKind], "refused, no response")
        XCTAssertFalse(bob.channel.isEstablished)
        // A truncated init (no room for a MAC) is dropped as malformed.
        XCTAssertTrue(bob.receive(ByteBuffer(bytes: [1, SecureFrame.initKind, 0, 0])).refusals.count == 1)
    }

    func testAResponseSignedByAnotherKeyThanTheCertificatesIsRefused() throws {
        let network = TestNetwork()
        let alice = ChannelEnd(try network.member("alice"), seed: 1)
        let bob = try network.member("bob")
        let init_ = try XCTUnwrap(alice.handshake().frames.first)
        let sender = try XCTUnwrap(HandshakeMessage.decode(init_, kind: SecureFrame.initKind).senderIndex)
        let digest = SHA256Digest.of(init_)
        let forged = HandshakeMessage.make(kind: SecureFrame.responseKind, senderIndex: 5, receiverIndex: sender,
                                           ephemeral: [UInt8](repeating: 9, count: 32),
                                           certificate: bob.certificate.encoded, label: SecureChannel.responseLabel,
                                           prefix: digest, sign: TestNetwork.identity("mallory").sign)
        let outputs = alice.receive(forged)
        XCTAssertEqual(outputs.refusals, [.badHandshakeSignature(name: "bob")])
        XCTAssertTrue(outputs.established.isEmpty)
        XCTAssertFalse(alice.channel.isEstablished)
    }

    func testAnInitiatorReachingAnotherPeerThanExpectedRefusesIt() throws {
        let network = TestNetwork()
        let alice = try network.member("alice"), bob = try network.member("bob", virtualIPs: [VirtualIP(0x6440_0002)])
        let carol = try network.member("carol", virtualIPs: [VirtualIP(0x6440_0003)])
        assertInitiatorRefuses(alice: alice, bob: bob, aliceExpects: carol.address,
                               .unexpectedPeer(name: "bob", expected: carol.address, got: bob.address))
    }

    func testAResponderExpectingAnotherPeerRefusesTheInitiator() throws {
        let network = TestNetwork()
        let alice = try network.member("alice"), bob = try network.member("bob")
        let carol = try network.member("carol")
        assertResponderRefuses(alice: alice, bob: bob, bobExpects: carol.address,
                               .unexpectedPeer(name: "alice", expected: carol.address, got: alice.address))
    }

    func testTheExpectedPeerIsAccepted() throws {
        let network = TestNetwork()
        let alice = try network.member("alice"), bob = try network.member("bob")
        let (outA, outB) = handshake(alice: alice, bob: bob, aliceExpects: bob.address)
        XCTAssertEqual(outA.established, [bob.certificate])
        XCTAssertEqual(outB.delivered, [Array("hi".utf8)])
    }

    // MARK: Simultaneous init

    func testSimultaneousInitsYieldOneSessionBothWays() throws {
        for seed in UInt64(1)...20 {
            let pair = try ChannelPair(seed: seed)
            let fromA = pair.a.send(Array("from a".utf8))
            let fromB = pair.b.send(Array("from b".utf8))
            XCTAssertEqual(fromA.frameKinds, [SecureFrame.initKind])
            XCTAssertEqual(fromB.frameKinds, [SecureFrame.initKind])
            let (outA, outB) = pair.settle(toB: fromA.frames, toA: fromB.frames)
            XCTAssertEqual(outA.established.count, 1, "seed \(seed): \(outA)")
            XCTAssertEqual(outB.established.count, 1, "seed \(seed): \(outB)")
            XCTAssertEqual(outA.delivered, [Array("from b".utf8)], "seed \(seed)")
            XCTAssertEqual(outB.delivered, [Array("from a".utf8)], "seed \(seed)")

            // One session: further frames open on the first try both ways, with no new handshake.
            for round in 0..<5 {
                let ab = pair.aSends([UInt8(round)]), ba = pair.bSends([UInt8(round) + 100])
                XCTAssertEqual(ab.b.delivered, [[UInt8(round)]], "seed \(seed)")
                XCTAssertEqual(ba.a.delivered, [[UInt8(round) + 100]], "seed \(seed)")
                XCTAssertEqual(ab.a.frameKinds + ba.b.frameKinds, [SecureFrame.sealedKind, SecureFrame.sealedKind])
                XCTAssertTrue((ab.a + ab.b + ba.a + ba.b).established.isEmpty)
            }
        }
    }

    // MARK: Rekey

    func testTheInitiatorRekeysAfterRekeyAfterWithoutLosingData() throws {
        let pair = try ChannelPair()
        pair.connect()
        pair.advance(by: .seconds(121))

        let rekeying = pair.a.send([1])
        XCTAssertEqual(rekeying.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind],
                       "sealed under the old session, then a new init")
        let sealedOld = rekeying.frames[0], init_ = rekeying.frames[1]
        XCTAssertEqual(pair.b.receive(sealedOld).delivered, [[1]])

        // While the init travels, both sides keep sealing under the old session.
        let fromB = pair.b.seal([2])
        let aBefore = pair.a.seal([3])
        let reply = pair.b.receive(init_)
        XCTAssertEqual(reply.frameKinds, [SecureFrame.responseKind])
        let fromB2 = pair.b.seal([4])

        let switched = pair.a.receive(reply.frames[0])
        XCTAssertEqual(switched.established, [pair.b.credentials.certificate])
        let aAfter = pair.a.seal([5])

        // The new-session frame arrives first: it confirms the new session at b; the old one still opens.
        let confirm = pair.b.receive(aAfter)
        XCTAssertEqual(confirm.established, [pair.a.credentials.certificate])
        XCTAssertEqual(confirm.delivered, [[5]])
        XCTAssertEqual(pair.b.receive(aBefore).delivered, [[3]])
        XCTAssertEqual(pair.a.receive(fromB).delivered, [[2]])
        XCTAssertEqual(pair.a.receive(fromB2).delivered, [[4]])

        // Both now seal under the new session; no further handshake.
        let ab = pair.aSends([6]), ba = pair.bSends([7])
        XCTAssertEqual(ab.b.delivered, [[6]])
        XCTAssertEqual(ba.a.delivered, [[7]])
        XCTAssertEqual(ab.a.frameKinds + ba.b.frameKinds, [SecureFrame.sealedKind, SecureFrame.sealedKind])
    }

    /// The responder rekeys only when the initiator has not: halfway between rekeyAfter (120 s) and rejectAfter
    /// (180 s), at 150 s.
    func testTheResponderRekeysHalfwayToRejectAfterWhenTheInitiatorDidNot() throws {
        let pair = try ChannelPair()
        pair.connect()
        pair.advance(by: .seconds(149))
        XCTAssertEqual(pair.b.send([1]).frameKinds, [SecureFrame.sealedKind], "not yet at 149 s")
        pair.advance(by: .seconds(1))
        XCTAssertEqual(pair.b.send([2]).frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind], "due at 150 s")
    }

    func testDataFlowsContinuouslyAcrossManyRekeys() throws {
        let pair = try ChannelPair()
        pair.connect()
        var sent = 0, delivered = 0, handshakes = 0
        // Ten virtual minutes, a packet each way every second, frames passed at once.
        for second in 0..<600 {
            pair.advance(by: .seconds(1))
            let ab = pair.aSends([UInt8(truncatingIfNeeded: second)])
            let ba = pair.bSends([UInt8(truncatingIfNeeded: second)])
            sent += 2
            delivered += ab.b.delivered.count + ba.a.delivered.count
            handshakes += ab.a.established.count + ba.a.established.count
            XCTAssertTrue((ab.a + ab.b + ba.a + ba.b).drops.isEmpty, "second \(second)")
        }
        XCTAssertEqual(delivered, sent)
        XCTAssertEqual(handshakes, 600 / 120, "one rekey every rekeyAfter")
    }

    /// Both ends past their rekey time send at once (an idle connection that comes back to life: the
    /// initiator's 120 s and the responder's 150 s have both passed), so both start a handshake. One init wins
    /// the tie and the other end answers it; that end must not start another rekey before the peer's first
    /// frame under the answered session confirms it, or the peer seals under a session it no longer holds
    /// (half the seeds lost the next frame with `unknown_session`).
    func testBothEndsRekeyingAtOnceLoseNothing() throws {
        for seed in UInt64(1)...20 {
            let pair = try ChannelPair(seed: seed)
            pair.connect()
            pair.advance(by: .seconds(151))
            let fromA = pair.a.send(Array("from a".utf8))
            let fromB = pair.b.send(Array("from b".utf8))
            XCTAssertEqual(fromA.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
            XCTAssertEqual(fromB.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
            let (outA, outB) = pair.settle(toB: fromA.frames, toA: fromB.frames)
            XCTAssertEqual(outA.delivered, [Array("from b".utf8)], "seed \(seed)")
            XCTAssertEqual(outB.delivered, [Array("from a".utf8)], "seed \(seed)")
            for round in 0..<5 {
                let ab = pair.aSends([UInt8(round)]), ba = pair.bSends([UInt8(round) + 100])
                XCTAssertEqual(ab.b.delivered, [[UInt8(round)]], "seed \(seed) round \(round): \(ab.b.drops)")
                XCTAssertEqual(ba.a.delivered, [[UInt8(round) + 100]], "seed \(seed) round \(round): \(ba.a.drops)")
            }
        }
    }

    /// The initiator rekeys on a send and then has nothing more to say; the responder holds the new session
    /// unconfirmed. When the responder's own limit passes (150 s) and it sends, its rekey completes and would
    /// drop that session, while the initiator seals under it: every frame lost until a new handshake (seen in
    /// `wow sim --settle-s 300`, 995/1000 delivered). The initiator confirms a new session at once with an
    /// empty frame, which delivers nothing.
    func testAnInitiatorConfirmsItsRekeyAtOnceSoALaterRekeyOfThePeerLosesNothing() throws {
        let pair = try ChannelPair()
        pair.connect()
        pair.advance(by: .seconds(121))
        let rekeying = pair.a.send([1])
        XCTAssertEqual(rekeying.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
        XCTAssertEqual(pair.b.receive(rekeying.frames[0]).delivered, [[1]])
        let reply = pair.b.receive(rekeying.frames[1])
        let switched = pair.a.receive(try XCTUnwrap(reply.frames.first))
        XCTAssertEqual(switched.frameKinds, [SecureFrame.sealedKind], "the confirmation")
        let confirmed = pair.b.receive(switched.frames[0])
        XCTAssertEqual(confirmed.established.count, 1, "b uses the new session now")
        XCTAssertTrue(confirmed.delivered.isEmpty, "an empty frame delivers nothing")

        // Idle for 30 s; then b, past its responder limit on the old session, sends and a sends.
        pair.advance(by: .seconds(30))
        let ab = pair.aSends([2]), ba = pair.bSends([3])
        XCTAssertEqual(ab.b.delivered, [[2]], "\(ab.b.drops)")
        XCTAssertEqual(ba.a.delivered, [[3]], "\(ba.a.drops)")
        XCTAssertTrue((ab.a + ab.b + ba.a + ba.b).drops.isEmpty)
    }

    func testAfterRejectAfterAnOldSessionNeitherSealsNorOpens() throws {
        let pair = try ChannelPair()
        pair.connect()
        pair.advance(by: .seconds(10))
        let late = pair.a.seal([1])
        pair.advance(by: .seconds(171))  // 181 s after the handshake

        XCTAssertEqual(pair.b.receive(late).drops, ["session_expired"])
        let outputs = pair.a.send([2])
        XCTAssertEqual(outputs.frameKinds, [SecureFrame.initKind], "nothing sealed under the dead session")
        XCTAssertEqual(pair.a.channel.queuedCount, 1)

        // The new handshake carries the queued plaintext.
        let (_, outB) = pair.settle(toB: outputs.frames)
        XCTAssertEqual(outB.delivered, [[2]])
        XCTAssertEqual(outB.established.count, 1)
    }

    func testRekeyAfterMessagesAndRejectAfterMessagesLimitASession() throws {
        var settings = ChannelEnd.defaultSettings
        settings.rekeyAfterMessages = 5
        settings.rejectAfterMessages = 8
        let pair = try ChannelPair(settings: settings)
        pair.connect()  // counter 0
        for counter in 1..<4 { XCTAssertEqual(pair.a.send([UInt8(counter)]).frameKinds, [SecureFrame.sealedKind]) }
        // Sealing the fifth frame (counter 4) reaches rekeyAfterMessages: a new init goes with it.
        let rekey = pair.a.send([4])
        XCTAssertEqual(rekey.frameKinds, [SecureFrame.sealedKind, SecureFrame.initKind])
        for counter in 5..<8 { XCTAssertEqual(pair.a.send([UInt8(counter)]).frameKinds, [SecureFrame.sealedKind]) }
        XCTAssertEqual(pair.a.send([8]).frameKinds, [], "counter 8 is beyond rejectAfterMessages: queued")
        XCTAssertEqual(pair.a.channel.queuedCount, 1)
        let (outA, outB) = pair.settle(toB: rekey.frames.suffix(1))
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outB.delivered, [[8]])
    }

    // MARK: Restarts and replayed inits

    func testARestartedResponderAnswersUnknownSessionAndTheInitiatorHandshakesAgain() throws {
        let pair = try ChannelPair()
        pair.connect()
        // Bob restarts: a fresh channel with no sessions.
        pair.b.channel = SecureChannel()
        pair.b.random = SeededRandom(seed: 777)

        let lost = pair.a.seal([1])
        let unknown = pair.b.receive(lost)
        XCTAssertEqual(unknown.drops, ["unknown_session"])
        XCTAssertEqual(unknown.frameKinds, [SecureFrame.unknownSessionKind])
        XCTAssertTrue(pair.b.receive(pair.a.seal([2])).frames.isEmpty, "unknown-session answers are rate limited")

        let again = pair.a.receive(unknown.frames[0])
        XCTAssertEqual(again.frameKinds, [SecureFrame.initKind])
        let (outA, outB) = pair.settle(toB: again.frames)
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outB.established.count, 1, "confirmed by the initiator's empty frame")
        let after = pair.aSends([3])
        XCTAssertEqual(after.b.delivered, [[3]])
        XCTAssertEqual(pair.bSends([4]).a.delivered, [[4]])
    }

    func testAReplayedInitDoesNotStopRecoveryFromAPeerRestart() throws {
        let pair = try ChannelPair()
        let first = pair.a.send([0])
        let capturedInit = first.frames[0]
        pair.settle(toB: first.frames)
        // A rekey, so that bob no longer remembers the first init; then the first init is replayed to bob, who
        // answers it with a session no one will confirm.
        pair.advance(by: .seconds(130))
        pair.aSends([1])
        pair.aSends([2])
        XCTAssertEqual(pair.b.receive(capturedInit).frameKinds, [SecureFrame.responseKind])

        // Alice restarts. Bob's next frame gets an unknown-session answer, and bob handshakes again.
        pair.advance(by: .seconds(5))
        pair.a.channel = SecureChannel()
        pair.a.random = SeededRandom(seed: 4242)
        let unknown = pair.a.receive(pair.b.seal([3]))
        XCTAssertEqual(unknown.frameKinds, [SecureFrame.unknownSessionKind])
        let answer = pair.b.receive(unknown.frames[0])
        XCTAssertEqual(answer.frameKinds, [SecureFrame.initKind], "\(answer)")
        pair.settle(toA: answer.frames)
        XCTAssertEqual(pair.bSends([4]).a.delivered, [[4]])
    }

    func testAnUnknownSessionAnswerWhileAnsweringTheRestartedPeersInitStartsNoSecondHandshake() throws {
        let pair = try ChannelPair()
        pair.connect()
        // Alice restarts and handshakes first; bob answers, but still seals under the old session meanwhile.
        pair.a.channel = SecureChannel()
        pair.a.random = SeededRandom(seed: 4242)
        let restart = pair.a.send([1])
        let answer = pair.b.receive(restart.frames[0])
        XCTAssertEqual(answer.frameKinds, [SecureFrame.responseKind])
        let unknown = pair.a.receive(pair.b.seal([2]))
        XCTAssertEqual(unknown.frameKinds, [SecureFrame.unknownSessionKind])
        XCTAssertEqual(pair.b.receive(unknown.frames[0]).drops, ["stale_unknown_session"],
                       "the answered handshake is about to be confirmed")
        let (outA, outB) = pair.settle(toA: answer.frames)
        XCTAssertEqual(outA.established.count, 1)
        XCTAssertEqual(outB.delivered, [[1]])
        XCTAssertEqual(pair.bSends([3]).a.delivered, [[3]])
    }

    func testAnUnknownSessionFrameForAnotherIndexIsIgnored() throws {
        let pair = try ChannelPair()
        pair.connect()
        let outputs = pair.a.receive(SecureFrame.unknownSession(0xDEAD_BEEF))
        XCTAssertEqual(outputs.drops, ["stale_unknown_session"])
        XCTAssertTrue(outputs.frames.isEmpty)
    }

    func testAResponderWhoseInitiatorDroppedTheHandshakeHandshakesItselfOnUnknownSession() throws {
        let pair = try ChannelPair()
        // Alice's init reaches bob, who answers and seals under the answered session; alice's channel is gone
        // before the response comes (its edge closed) and a fresh one takes bob's frames.
        let first = pair.a.send([1])
        XCTAssertEqual(pair.b.receive(first.frames[0]).frameKinds, [SecureFrame.responseKind])
        pair.a.channel = SecureChannel()
        pair.a.random = SeededRandom(seed: 4242)

        let unknown = pair.a.receive(pair.b.seal([2]))
        XCTAssertEqual(unknown.frameKinds, [SecureFrame.unknownSessionKind])
        XCTAssertEqual(pair.b.receive(unknown.frames[0]).drops, ["stale_unknown_session"],
                       "within the retry interval the initiator may still confirm")
        pair.advance(by: .seconds(2))
        let again = pair.a.receive(pair.b.seal([3]))
        XCTAssertEqual(again.frameKinds, [SecureFrame.unknownSessionKind])
        let handshake = pair.b.receive(again.frames[0])
        XCTAssertEqual(handshake.frameKinds, [SecureFrame.initKind], "\(handshake)")
        XCTAssertEqual(pair.b.send([4]).frameKinds, [], "what bob sends now waits for his handshake")
        let (outA, outB) = pair.settle(toA: handshake.frames)
        XCTAssertEqual(outB.established.map(\.name), ["alice"])
        XCTAssertEqual(outA.established.map(\.name), ["bob"])
        XCTAssertEqual(outA.delivered, [[4]])
        XCTAssertEqual(pair.aSends([5]).b.delivered, [[5]])
    }

    func testTwoRespondersEachHoldingAnAnswerTheOtherDroppedRecover() throws {
        let pair = try ChannelPair()
        // Each end's init is answered by a channel the other end opened after dropping its own (crossing inits
        // over a relay whose edges were closed and reopened): both seal under answered sessions nobody holds.
        let fromA = pair.a.send([1]).frames
        let fromB = pair.b.send([2]).frames
        pair.a.channel = SecureChannel()
        pair.a.random = SeededRandom(seed: 4242)
        pair.b.channel = SecureChannel()
        pair.b.random = SeededRandom(seed: 2424)
        XCTAssertEqual(pair.b.receive(fromA[0]).frameKinds, [SecureFrame.responseKind])
        XCTAssertEqual(pair.a.receive(fromB[0]).frameKinds, [SecureFrame.responseKind])
        XCTAssertFalse(pair.a.channel.isEstablished || pair.b.channel.isEstablished)

        pair.advance(by: .seconds(2))
        let unknown = pair.b.receive(pair.a.seal([3]))
        XCTAssertEqual(unknown.frameKinds, [SecureFrame.unknownSessionKind])
        let handshake = pair.a.receive(unknown.frames[0])
        XCTAssertEqual(handshake.frameKinds, [SecureFrame.initKind], "\(handshake)")
        let (outA, outB) = pair.settle(toB: handshake.frames)
        XCTAssertEqual(outA.established.map(\.name), ["bob"])
        XCTAssertEqual(outB.established.map(\.name), ["alice"])
        XCTAssertEqual(pair.aSends([4]).b.delivered, [[4]])
        XCTAssertEqual(pair.bSends([5]).a.delivered, [[5]])
    }

    func testAReplayedInitDoesNotReplaceAWorkingSession() throws {
        let pair = try ChannelPair()
        let first = pair.a.send([0])
        let capturedInit = first.frames[0]
        pair.settle(toB: first.frames)
        XCTAssertTrue(pair.b.channel.isEstablished)

        // Replayed right away: the same response again, which the initiator ignores.
        let replay = pair.b.receive(capturedInit)
        XCTAssertEqual(replay.frameKinds, [SecureFrame.responseKind])
        XCTAssertEqual(pair.a.receive(replay.frames[0]).drops, ["stray_handshake_response"])
        XCTAssertEqual(pair.aSends([1]).b.delivered, [[1]])
        XCTAssertEqual(pair.bSends([2]).a.delivered, [[2]])

        // Replayed after a rekey (the responder no longer remembers it): answered, but never confirmed.
        pair.advance(by: .seconds(130))
        let rekey = pair.aSends([3])
        XCTAssertEqual(rekey.a.established.count, 1)
        XCTAssertEqual(rekey.b.established.count, 1, "confirmed by the initiator's empty frame")
        XCTAssertEqual(pair.aSends([4]).b.delivered, [[4]])
        let lateReplay = pair.b.receive(capturedInit)
        XCTAssertEqual(lateReplay.frameKinds, [SecureFrame.responseKind])
        XCTAssertEqual(pair.a.receive(lateReplay.frames[0]).drops, ["stray_handshake_response"])
        for round in 5..<10 {
            let ab = pair.aSends([UInt8(round)]), ba = pair.bSends([UInt8(round)])
            XCTAssertEqual(ab.b.delivered, [[UInt8(round)]])
            XCTAssertEqual(ba.a.delivered, [[UInt8(round)]])
            XCTAssertTrue((ab.a + ab.b + ba.a + ba.b).established.isEmpty, "the session stays")
        }
    }
}

/// SHA-256 of a frame's readable bytes, as the response signs it.
enum SHA256Digest {
    static func of(_ frame: ByteBuffer) -> [UInt8] { Array(SHA256.hash(data: Array(frame.readableBytesView))) }
}

/// The data path of an established channel: a plaintext with room around it is sealed in its own buffer, into
/// the same bytes as one without; frames open into the buffer given.
final class SecureChannelInPlaceTests: XCTestCase {
    private func withRoom(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: SecureChannel.sealingHeadroom + bytes.count
                                                  + SecureChannel.sealingTailroom)
        buffer.moveWriterIndex(to: SecureChannel.sealingHeadroom)
        buffer.moveReaderIndex(to: SecureChannel.sealingHeadroom)
        buffer.writeBytes(bytes)
        return buffer
    }

    func testAPlaintextWithRoomIsSealedInPlaceIntoTheSameFrameAsACopiedOne() throws {
        // Two identical pairs (same seeds, deterministic keys): the n-th frame of each is sealed under the same key
        // and counter.
        let copied = try ChannelPair(), inPlace = try ChannelPair()
        copied.connect()
        inPlace.connect()
        for size in [0, 1, 100, 1_400] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            let expected = copied.a.seal(bytes)
            let plaintext = withRoom(bytes)
            let storage = plaintext.withVeryUnsafeBytes { $0.baseAddress }
            let outputs = Array(inPlace.a.channel.send(consume plaintext, inPlace.a.environment, random: &inPlace.a.random))
            let frame = try XCTUnwrap(outputs.frames.first, "\(outputs)")
            XCTAssertEqual(outputs.count, 1)
            XCTAssertEqual(Array(frame.readableBytesView), Array(expected.readableBytesView), "size \(size)")
            #if canImport(CCryptoBoringSSL)
            XCTAssertEqual(frame.withVeryUnsafeBytes { $0.baseAddress }, storage, "sealed in the plaintext's buffer")
            #endif
            XCTAssertEqual(inPlace.b.receive(frame).delivered, size == 0 ? [] : [bytes],
                           "an empty frame only confirms a session")
        }
    }

    func testFramesOpenIntoTheBufferGivenAndReplaysStillDrop() throws {
        let pair = try ChannelPair()
        pair.connect()
        var buffer = ByteBufferAllocator().buffer(capacity: 4_096)
        let storage = buffer.withVeryUnsafeBytes { $0.baseAddress }
        for index in 0..<5 {
            let frame = pair.a.seal([UInt8](repeating: UInt8(index), count: 1_000))
            let outputs = Array(pair.b.channel.receive(frame, pair.b.environment, random: &pair.b.random,
                                                       openingInto: &buffer))
            XCTAssertEqual(outputs.delivered, [[UInt8](repeating: UInt8(index), count: 1_000)])
            #if canImport(CCryptoBoringSSL)
            XCTAssertEqual(buffer.withVeryUnsafeBytes { $0.baseAddress }, storage, "frame \(index) opened in place")
            #endif
            let again = Array(pair.b.channel.receive(frame, pair.b.environment, random: &pair.b.random,
                                                     openingInto: &buffer))
            XCTAssertEqual(again.drops, ["replayed"])
        }
    }

    func testOutputsHoldOneInlineAndMoreInOrder() {
        var outputs = SecureChannel.Outputs()
        XCTAssertTrue(outputs.isEmpty)
        outputs.append(.dropped("a"))
        outputs.append(.dropped("b"))
        outputs += [.dropped("c"), .reachedSelf]
        XCTAssertEqual(Array(outputs).drops, ["a", "b", "c"])
        XCTAssertEqual(outputs.count, 4)
        var iterated = 0
        for _ in outputs { iterated += 1 }
        XCTAssertEqual(iterated, 4)
        if case .reachedSelf = outputs[3] {} else { XCTFail("\(outputs[3])") }
    }
}
