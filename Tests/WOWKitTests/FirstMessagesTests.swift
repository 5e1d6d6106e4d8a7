import Crypto
import NIOCore
import XCTest

@testable import WOWKit

/// A handshake init that carries the initiator's first messages, sealed for the responder's static key: a link
/// in one round trip, and what replays, stale keys and crossing inits do to it (docs/security.md, "One round
/// trip").
final class FirstMessagesTests: XCTestCase {
    /// alice and bob, each with a static key; alice knows bob's.
    private func pair(seed: UInt64 = 1) throws -> ChannelPair {
        let pair = try ChannelPair(seed: seed)
        pair.a.staticKey = Self.staticKey(seed: seed, clock: { TestNetwork.unixMicroseconds })
        pair.b.staticKey = Self.staticKey(seed: seed + 1, clock: { TestNetwork.unixMicroseconds })
        pair.a.channel.peerStaticKey = pair.b.staticKey?.publicKey
        return pair
    }

    static func staticKey(seed: UInt64, clock: @escaping () -> UInt64) -> StaticHandshakeKey {
        var random = SeededRandom(seed: seed &* 7919)
        return StaticHandshakeKey(privateKey: SecureChannel.makeEphemeral(ChannelEnd.defaultSettings, random: &random),
                                  clock: clock)
    }

    func testTheInitCarriesTheFirstMessageAndTheResponderDeliversItAtOnce() throws {
        let pair = try pair()
        let first = pair.a.send(Array("link request".utf8))
        XCTAssertEqual(first.frameKinds, [SecureFrame.initKind])
        XCTAssertEqual(pair.a.channel.queuedCount, 1, "held until the response says it was taken")

        let atB = pair.b.receive(first.frames[0])
        XCTAssertEqual(atB.frameKinds, [SecureFrame.responseKind])
        XCTAssertEqual(atB.established, [pair.a.credentials.certificate], "a fresh init: the session is in use at once")
        XCTAssertEqual(atB.delivered, [Array("link request".utf8)], "delivered with the init, half a round trip in")
        XCTAssertTrue(pair.b.channel.isEstablished)

        // The responder answers under the new session right behind its response.
        let reply = pair.b.send(Array("link reply".utf8))
        XCTAssertEqual(reply.frameKinds, [SecureFrame.sealedKind])
        let atA = pair.a.receive(atB.frames[0])
        XCTAssertEqual(atA.established, [pair.b.credentials.certificate])
        XCTAssertEqual(atA.frames.count, 0, "the first message is not sent again")
        XCTAssertEqual(pair.a.channel.queuedCount, 0)
        XCTAssertEqual(pair.a.receive(reply.frames[0]).delivered, [Array("link reply".utf8)], "one round trip")

        // Both ways work on, and bob never delivers the first message twice.
        let (outA, outB) = pair.settle(toB: [pair.a.seal(Array("more".utf8))], toA: [pair.b.seal(Array("back".utf8))])
        XCTAssertEqual(outB.delivered, [Array("more".utf8)])
        XCTAssertEqual(outA.delivered, [Array("back".utf8)])
    }

    func testEverythingQueuedBeforeTheInitRidesInItAndWhatFollowsWaitsForTheResponse() throws {
        let pair = try pair()
        // The node queues its link request, then (a joining node) its CTMs: the init leaves with the first send.
        let first = pair.a.send([1])
        let later = pair.a.send([2]) + pair.a.send([3])
        XCTAssertEqual(later.frames.count, 0)
        let atB = pair.b.receive(first.frames[0])
        XCTAssertEqual(atB.delivered, [[1]])
        let atA = pair.a.receive(atB.frames[0])
        XCTAssertEqual(atA.frameKinds, [SecureFrame.sealedKind, SecureFrame.sealedKind], "only what the init did not carry")
        let (_, outB) = pair.settle(toB: atA.frames)
        XCTAssertEqual(outB.delivered, [[2], [3]])
    }

    func testAReplayedInitDeliversNothingAndMovesNoSession() throws {
        let pair = try pair()
        let first = pair.a.send(Array("link request".utf8)).frames[0]
        XCTAssertEqual(pair.b.receive(first).delivered.count, 1)
        // The same init on another edge of bob's (a fresh channel, the same node and static key), as a replay from
        // a forged source arrives: not taken, no session in use, nothing delivered.
        let other = ChannelEnd(pair.b.credentials, seed: 77)
        other.staticKey = pair.b.staticKey
        let replayed = other.receive(first)
        XCTAssertEqual(replayed.delivered, [])
        XCTAssertEqual(replayed.established, [])
        XCTAssertEqual(replayed.drops, [], "the very init again: taken before, so said, and not delivered")
        XCTAssertFalse(other.channel.isEstablished)
        // Nor on the same edge later, once the response was answered.
        pair.settle(toA: pair.b.send(Array("x".utf8)).frames)
        let again = pair.b.receive(first)
        XCTAssertEqual(again.delivered, [])
        XCTAssertTrue(again.established.isEmpty)
        // A new init of alice's, stamped later, is taken.
        let fresh = ChannelEnd(pair.a.credentials, seed: 99)
        fresh.staticKey = pair.a.staticKey
        fresh.channel.peerStaticKey = pair.b.staticKey?.publicKey
        let other2 = ChannelEnd(pair.b.credentials, seed: 78)
        other2.staticKey = pair.b.staticKey
        XCTAssertEqual(other2.receive(fresh.send([7]).frames[0]).delivered, [[7]])
    }

    func testARestartedResponderCannotOpenOldInitsAndTheMessageFollowsTheHandshake() throws {
        let pair = try pair()
        let first = pair.a.send(Array("link request".utf8)).frames[0]
        // bob restarted: a new static key. alice's NodeInfo of him is stale.
        pair.b.staticKey = Self.staticKey(seed: 555, clock: { TestNetwork.unixMicroseconds })
        let atB = pair.b.receive(first)
        XCTAssertEqual(atB.delivered, [])
        XCTAssertEqual(atB.drops, ["first_messages_not_taken"])
        XCTAssertFalse(pair.b.channel.isEstablished, "waits for confirmation, as without first messages")
        let atA = pair.a.receive(atB.frames[0])
        XCTAssertEqual(atA.frameKinds, [SecureFrame.sealedKind], "the first message goes again, sealed")
        let (_, outB) = pair.settle(toB: atA.frames)
        XCTAssertEqual(outB.delivered, [Array("link request".utf8)], "delivered exactly once")
    }

    func testAResponderWithoutAStaticKeyTakesNothingAndTheLinkTakesTwoRoundTrips() throws {
        let pair = try pair()
        pair.b.staticKey = nil
        let (_, outB) = pair.settle(toB: pair.a.send([5]).frames)
        XCTAssertEqual(outB.delivered, [[5]])
    }

    func testAnInitiatorWithoutThePeersKeySendsAPlainInit() throws {
        let pair = try pair()
        pair.a.channel.peerStaticKey = nil
        let first = pair.a.send([5]).frames[0]
        XCTAssertNil(try HandshakeMessage.decode(first, kind: SecureFrame.initKind).firstMessages)
        XCTAssertTrue(AdmissionKey.hasInitLayout(first))
        let (_, outB) = pair.settle(toB: [first])
        XCTAssertEqual(outB.delivered, [[5]])
    }

    func testCrossingInitsWithFirstMessagesDeliverEachMessageOnceOnEachSide() throws {
        for seed: UInt64 in 1...8 {
            let pair = try pair(seed: seed)
            pair.b.channel.peerStaticKey = pair.a.staticKey?.publicKey
            let fromA = pair.a.send([0xA]).frames
            let fromB = pair.b.send([0xB]).frames
            let (outA, outB) = pair.settle(toB: fromA, toA: fromB)
            XCTAssertEqual(outB.delivered, [[0xA]], "seed \(seed)")
            XCTAssertEqual(outA.delivered, [[0xB]], "seed \(seed)")
            XCTAssertTrue(pair.a.channel.isEstablished && pair.b.channel.isEstablished, "seed \(seed)")
            let (later, _) = pair.settle(toA: [pair.b.seal([0xC])])
            XCTAssertEqual(later.delivered, [[0xC]], "seed \(seed)")
        }
    }

    /// Found by the fuzzer: bob took alice's first message but his response was lost; his own init (a
    /// handshake he starts, or one an `unknown session` answer provokes) must not make alice give up hers and
    /// send the message again.
    func testAResponseLostAfterTheFirstMessagesWereTakenDeliversThemOnce() throws {
        let pair = try pair()
        let first = pair.a.send(Array("link request".utf8)).frames
        let atB = pair.b.receive(first[0])
        XCTAssertEqual(atB.delivered.count, 1)
        // The response is lost. Bob seals something; alice cannot open it and says so; bob does not handshake
        // again for that (he answered alice a moment ago).
        let sealed = pair.b.send([1]).frames
        let unknown = pair.a.receive(sealed[0]).frames
        XCTAssertEqual(pair.b.receive(unknown[0]).frameKinds, [], "no new handshake for a session just answered")
        // Bob starts a handshake anyway: the inits cross, and alice's, which carries first messages, goes on.
        pair.advance(by: .seconds(2))
        let bobsInit = pair.b.handshake().frames
        let (outA, outB) = pair.settle(toA: bobsInit)
        XCTAssertEqual(outB.delivered, [], "nothing delivered twice: \(outB.delivered)")
        XCTAssertEqual(pair.bOutputs.delivered + atB.delivered, [Array("link request".utf8)])
        XCTAssertTrue(pair.a.channel.isEstablished, "\(outA)")
        let (_, later) = pair.settle(toB: [pair.a.seal([2])])
        XCTAssertEqual(later.delivered, [[2]])
    }

    /// The same init sent again with a cookie MAC (a busy responder's, or a forged cookie frame) has another
    /// digest; its first messages were delivered already and are neither delivered again nor sent again.
    func testAnInitSentAgainWithACookieDoesNotDeliverItsFirstMessagesTwice() throws {
        let pair = try pair()
        let first = pair.a.send(Array("link request".utf8)).frames[0]
        XCTAssertEqual(pair.b.receive(first).delivered.count, 1)
        // The response is lost; a cookie frame (anyone can forge one: it names the init's index) makes alice
        // send her init again with its cookie MAC.
        let index = try HandshakeMessage.decode(first, kind: SecureFrame.initKind).senderIndex
        let again = pair.a.receive(SecureFrame.cookie([UInt8](repeating: 9, count: 16), forInit: index)).frames
        XCTAssertEqual(again.count, 1)
        XCTAssertNotEqual(Array(again[0].readableBytesView), Array(first.readableBytesView))
        let (_, outB) = pair.settle(toB: again)
        XCTAssertEqual(outB.delivered, [], "taken before: not delivered again, and alice does not send it again")
        XCTAssertTrue(pair.a.channel.isEstablished)
        XCTAssertEqual(pair.a.channel.queuedCount, 0)
        let (_, later) = pair.settle(toB: [pair.a.seal([3])])
        XCTAssertEqual(later.delivered, [[3]])
    }

    func testAChangedByteOfAnInitWithFirstMessagesIsNeverDelivered() throws {
        let pair = try pair()
        let first = pair.a.send([9, 9, 9]).frames[0]
        let bytes = Array(first.readableBytesView)
        // All but the cookie MAC, which only a busy responder checks (a changed one is still alice's init).
        for index in bytes.indices.dropLast(AdmissionKey.macSize) {
            var changed = bytes
            changed[index] ^= 0x01
            let other = ChannelEnd(pair.b.credentials, seed: UInt64(index) + 100)
            other.staticKey = pair.b.staticKey
            let outputs = other.receive(ByteBuffer(bytes: changed))
            XCTAssertEqual(outputs.delivered, [], "byte \(index)")
            XCTAssertEqual(outputs.established, [], "byte \(index)")
        }
    }

    func testTheInitsLayoutCheckAcceptsFirstMessagesAndRefusesWrongLengths() throws {
        let pair = try pair()
        let first = pair.a.send(Array(repeating: 1, count: 300)).frames[0]
        XCTAssertTrue(AdmissionKey.hasInitLayout(first))
        var longer = first
        longer.writeInteger(UInt8(0))
        XCTAssertFalse(AdmissionKey.hasInitLayout(longer))
        var shorter = first
        shorter.moveWriterIndex(to: shorter.writerIndex - 1)
        XCTAssertFalse(AdmissionKey.hasInitLayout(shorter))
    }

    /// A link request and the Connect-To-Me behind it (`SecuredEdge.sendTogether`): queued without starting the
    /// handshake, then one init carries both, and the responder delivers both with it, in order.
    func testMessagesSentTogetherRideInOneInit() throws {
        let pair = try pair()
        let a = pair.a
        for text in ["link request", "connect to me"] {
            let outputs = Array(a.channel.send(ByteBuffer(string: text), a.environment, random: &a.random, startsHandshake: false))
            XCTAssertTrue(outputs.frames.isEmpty, "nothing leaves before both are queued")
        }
        XCTAssertEqual(a.channel.queuedCount, 2)
        XCTAssertFalse(a.channel.initCarriesFirstMessages)
        let first = Array(a.channel.startHandshakeForQueue(a.environment, random: &a.random))
        XCTAssertEqual(first.frameKinds, [SecureFrame.initKind])
        XCTAssertTrue(a.channel.initCarriesFirstMessages)
        XCTAssertEqual(pair.b.receive(first.frames[0]).delivered, [Array("link request".utf8), Array("connect to me".utf8)])
        XCTAssertTrue(Array(a.channel.startHandshakeForQueue(a.environment, random: &a.random)).isEmpty,
                      "nothing waits in the queue any more: no second init")
    }

    func testStampsOnlyRiseAndAForgottenMemberMustStampAfterTheFloor() {
        var now: UInt64 = 1_000
        let key = Self.staticKey(seed: 3, clock: { now })
        let first = key.nextStamp(), second = key.nextStamp()
        XCTAssertGreaterThan(second, first, "within one microsecond too")
        now = 999
        XCTAssertGreaterThan(key.nextStamp(), second, "a clock that steps back does not")

        XCTAssertEqual(key.take(stamp: 1_010, ephemeral: [1], from: [1]), .fresh)
        XCTAssertEqual(key.take(stamp: 1_010, ephemeral: [1], from: [1]), .takenBefore, "the same init again")
        XCTAssertEqual(key.take(stamp: 1_010, ephemeral: [2], from: [1]), .stale, "another init with that stamp")
        XCTAssertEqual(key.take(stamp: 1_009, ephemeral: [3], from: [1]), .stale)
        XCTAssertEqual(key.take(stamp: 1_011, ephemeral: [4], from: [1]), .fresh)
        XCTAssertEqual(key.take(stamp: 1_005, ephemeral: [5], from: [2]), .fresh, "members are apart")
        XCTAssertEqual(key.take(stamp: 1_000, ephemeral: [6], from: [3]), .fresh, "stamped at the key's start")
        XCTAssertEqual(key.take(stamp: 999, ephemeral: [7], from: [4]), .stale, "stamped before the key's start")
    }

    /// The static key is the identity's (the same after a restart, so a bootstrap list may name it), and a
    /// restarted node takes no init stamped before its start: an init replayed from before the restart (it
    /// would open, as the key is the same) delivers nothing.
    func testTheKeyOutlivesARestartButAnInitFromBeforeTheRestartIsStale() throws {
        let identity = NodeIdentity.deterministic(seed: Array("restarting".utf8))
        var now: UInt64 = 5_000_000
        let before = StaticHandshakeKey(identity: identity, clock: { now })
        XCTAssertEqual(before.take(stamp: 5_000_100, ephemeral: [1], from: [9]), .fresh)
        now = 6_000_000
        let after = StaticHandshakeKey(identity: identity, clock: { now })
        XCTAssertEqual(after.publicKey, before.publicKey)
        XCTAssertEqual(after.publicKey, StaticHandshakeKey.publicKey(for: identity))
        XCTAssertNotEqual(after.publicKey, StaticHandshakeKey.publicKey(for: .deterministic(seed: Array("other".utf8))))
        XCTAssertEqual(after.take(stamp: 5_000_100, ephemeral: [1], from: [9]), .stale, "the replay")
        XCTAssertEqual(after.take(stamp: 5_999_999, ephemeral: [2], from: [8]), .stale)
        XCTAssertEqual(after.take(stamp: 6_000_001, ephemeral: [3], from: [9]), .fresh, "a new init")
    }

    func testPeersKeysAreBoundedAndAKeyOfTheWrongSizeIsNeitherKeptNorSent() throws {
        var keys = PeerReports()
        func address(_ n: Int) -> Address { Address(bytes: (0..<20).map { UInt8(truncatingIfNeeded: n >> ($0 % 4 * 8)) })! }
        keys.note(NodeInfo(address: address(0), uris: [], handshakeKey: [UInt8](repeating: 1, count: 31)))
        XCTAssertNil(keys.handshakeKey(of: address(0)), "31 bytes: not a key")
        for n in 0...PeerReports.capacity {
            keys.note(NodeInfo(address: address(n + 1), uris: [], handshakeKey: [UInt8](repeating: 2, count: 32)))
        }
        XCTAssertNil(keys.handshakeKey(of: address(1)), "the longest known is forgotten beyond the capacity")
        XCTAssertEqual(keys.handshakeKey(of: address(PeerReports.capacity + 1)), [UInt8](repeating: 2, count: 32))

        let odd = NodeInfo(address: Self.address, uris: [], handshakeKey: [UInt8](repeating: 3, count: 33))
        let status = EdgeMessage.linkReply(LinkReply(token: 1, responder: odd, observedURI: try TransportURI("udp://198.18.0.2:4000"),
                                                     neighbours: []))
        guard case .linkReply(let decoded) = try EdgeMessage.decode(status.encoded()) else { return XCTFail("not a reply") }
        XCTAssertNil(decoded.responder.handshakeKey, "an encoder sends no key of the wrong size")
    }

    func testAKeyFromANeighbourListFillsInButNeverOverridesWhatANodeSaidOfItself() {
        var keys = PeerReports()
        let listed = [UInt8](repeating: 4, count: 32), own = [UInt8](repeating: 5, count: 32)
        let peer = Self.address
        keys.noteHearsay(NodeInfo(address: peer, uris: [], handshakeKey: listed))
        XCTAssertEqual(keys.handshakeKey(of: peer), listed, "a node that never spoke to us: the list's key")
        keys.note(NodeInfo(address: peer, uris: [], handshakeKey: own, mapsPerPeer: true))
        XCTAssertEqual(keys.handshakeKey(of: peer), own, "its own word replaces the list's")
        keys.noteHearsay(NodeInfo(address: peer, uris: [], handshakeKey: listed))
        XCTAssertEqual(keys.handshakeKey(of: peer), own, "and a list never overrides it")
        XCTAssertTrue(keys.mapsPerPeer(peer), "nor what else it said of itself")
        let other = Address(hex: "3434343434343434343434343434343434343434")!
        keys.noteHearsay(NodeInfo(address: other, uris: [], handshakeKey: [UInt8](repeating: 6, count: 31)))
        XCTAssertNil(keys.handshakeKey(of: other), "31 bytes: not a key")
    }

    // MARK: NodeInfo

    static let address = Address(hex: "0123456789abcdef0123456789abcdef01234567")!

    func testANodeInfoCarriesItsHandshakeKeyInNeighbourListsToo() throws {
        let key = [UInt8](repeating: 0x42, count: 32)
        let info = NodeInfo(address: Self.address, uris: [try TransportURI("udp://198.18.0.1:4000")], handshakeKey: key)
        let request = LinkRequest(token: 1, type: "structured.near", requester: info, target: nil,
                                  observedURI: try TransportURI("udp://198.18.0.2:4000"))
        guard case .linkRequest(let decoded) = try EdgeMessage.decode(EdgeMessage.linkRequest(request).encoded()) else {
            return XCTFail("not a link request")
        }
        XCTAssertEqual(decoded.requester.handshakeKey, key)
        XCTAssertEqual(decoded, request)

        // A neighbour list passes on the keys its sender knows: a node that learns of a peer there links to it
        // in one round trip.
        let other = NodeInfo(address: Address(hex: "1717171717171717171717171717171717171717")!,
                             uris: [try TransportURI("udp://198.18.0.3:4000")])
        let status = EdgeMessage.status(Status(neighbours: [info, other]))
        guard case .status(let neighbours) = try EdgeMessage.decode(status.encoded()) else { return XCTFail("not a status") }
        XCTAssertEqual(neighbours.neighbours[0].handshakeKey, key)
        XCTAssertNil(neighbours.neighbours[1].handshakeKey)
        XCTAssertEqual(neighbours.neighbours, [info, other])

        // A node passes on the keys of its new connections (a joiner its neighbours are about to link to), or
        // all of them to a receiver new itself; not the keys settled nodes know already.
        func connection(to peer: NodeInfo, at created: Timestamp) throws -> Connection {
            Connection(peer: peer, localTypes: ["structured.near"], remoteTypes: [], edgeID: EdgeID(1), transport: "udp",
                       localURI: try TransportURI("udp://198.18.0.9:4000"), remoteURI: peer.uris[0], isInbound: false,
                       createdAt: created)
        }
        let keyed = NodeInfo(address: Address(hex: "2727272727272727272727272727272727272727")!,
                             uris: [try TransportURI("udp://198.18.0.4:4000")], handshakeKey: key)
        let settled = try connection(to: info, at: .zero)
        let joined = try connection(to: keyed, at: Timestamp(nanoseconds: 25_000_000_000))
        let now = Timestamp(nanoseconds: 30_000_000_000)
        XCTAssertEqual(Node.sharing([settled, joined], allKeys: false, at: now).map(\.handshakeKey), [nil, key])
        XCTAssertEqual(Node.sharing([settled, joined], allKeys: true, at: now).map(\.handshakeKey), [key, key])
        XCTAssertEqual(Node.sharing([settled, joined], allKeys: false, at: now + .seconds(10)).map(\.handshakeKey),
                       [nil, nil])

        // What decodes re-encodes to the same bytes (the edge-message fuzzer checks this).
        let listed = [1, 0x07, 1] + Array(Self.address.bytes) + [0x80] + [UInt8](repeating: 7, count: 32)
        let message = try EdgeMessage.decode(ByteBuffer(bytes: listed))
        XCTAssertEqual(Array(message.encoded().readableBytesView), listed)
        // Where a key belongs, the flag without the key's bytes is truncated, not read past the end.
        // The key sits after the requester's URIs, before target presence (1) and the observed URI (1 + text).
        let withKey = Array(EdgeMessage.linkRequest(request).encoded().readableBytesView)
        let keyEnd = withKey.count - 2 - request.observedURI.text.utf8.count
        XCTAssertEqual(Array(withKey[(keyEnd - 32)..<keyEnd]), key)
        XCTAssertThrowsError(try EdgeMessage.decode(ByteBuffer(bytes: withKey[..<(keyEnd - 29)]))) { error in
            XCTAssertEqual(error as? WireError, .truncated(field: "requester.handshake_key"))
        }
        // So in a neighbour list: a listed node's key cut short is refused, not read past the end.
        let cut = [1, 0x07, 1] + Array(Self.address.bytes) + [0x80] + [UInt8](repeating: 7, count: 20)
        XCTAssertThrowsError(try EdgeMessage.decode(ByteBuffer(bytes: cut))) { error in
            XCTAssertEqual(error as? WireError, .truncated(field: "neighbours.handshake_key"))
        }
    }
}
