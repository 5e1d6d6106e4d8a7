import XCTest

@testable import WOWKit

/// What a node learns about where peers see it.
final class PublicURIsTests: XCTestCase {
    private let a = Address(high: 1, middle: 0, low: 0)
    private let b = Address(high: 2, middle: 0, low: 0)
    private let c = Address(high: 3, middle: 0, low: 0)

    func testObservedURIsComeFirstNewestFirstOnePerAddress() {
        var uris = PublicURIs()
        let bound = uri("udp://198.19.1.2:4000")
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false, isOwnHost: false),
                       .init(isNewest: true, rebound: false, reachabilityChanged: false))
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31000"), from: b, isBound: false, isOwnHost: false),
                       .init(isNewest: false, rebound: false, reachabilityChanged: false), "the same again changes nothing")
        XCTAssertEqual(uris.learn(uri("tcp://198.18.0.7:32000"), from: a, isBound: false, isOwnHost: false).isNewest, true)
        XCTAssertEqual(uris.advertised(from: [bound, uri("udp://198.18.0.7:31000"), uri("tcp://198.18.0.7:32000")]),
                       [uri("tcp://198.18.0.7:32000"), uri("udp://198.18.0.7:31000"), bound])
        XCTAssertEqual(uris.advertised(from: [bound]), [bound], "only what the transports list")
        XCTAssertFalse(uris.isReachableDirectly)
    }

    func testANewPortAtAnAddressTwoPeersSawIsARebinding() {
        var uris = PublicURIs()
        _ = uris.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false, isOwnHost: false)
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31001"), from: c, isBound: false, isOwnHost: false).rebound, false,
                       "one peer saw the old port: a symmetric NAT gives every peer another")
        _ = uris.learn(uri("udp://198.18.0.7:31001"), from: b, isBound: false, isOwnHost: false)
        let learned = uris.learn(uri("udp://198.18.0.7:40000"), from: a, isBound: false, isOwnHost: false)
        XCTAssertEqual(learned, .init(isNewest: true, rebound: true, reachabilityChanged: false))
        XCTAssertEqual(uris.observed, [uri("udp://198.18.0.7:40000")], "the stale mapping is gone")
    }

    /// A peer on our LAN reports our private address (where we are bound); behind a NAT that report goes after
    /// the NAT's mappings, whichever came last: peers beyond the NAT try URIs one at a time when they punch, and
    /// tried the LAN address first.
    func testBehindANATItsMappingsAreAdvertisedBeforeALANPeersView() {
        var uris = PublicURIs()
        let bound = uri("udp://198.19.1.11:4101")
        let mapping = uri("udp://198.18.2.1:4101")
        _ = uris.learn(mapping, from: a, isBound: false, isOwnHost: false)
        _ = uris.learn(bound, from: b, isBound: true, isOwnHost: true)
        XCTAssertEqual(uris.observed.first, bound, "the LAN peer's report is the newest")
        XCTAssertEqual(uris.advertised(from: [bound, mapping]), [mapping, bound])
        var publicNode = PublicURIs()
        let own = uri("udp://198.18.11.3:4000")
        _ = publicNode.learn(own, from: a, isBound: true, isOwnHost: true)
        XCTAssertEqual(publicNode.advertised(from: [own]), [own], "no NAT: where it is bound")
    }

    /// Behind a symmetric NAT every peer sees another port at the NAT's address. The transport lists the last
    /// few it heard of, but the node gives out only the newest (what a peer needs to open its own filter toward
    /// the NAT's address): every URI it gives out is one more that each link attempt and direct retry tries.
    func testBehindASymmetricNATOnlyTheNewestMappingIsAdvertised() {
        var uris = PublicURIs()
        let bound = uri("udp://198.19.1.2:4000")
        let mappings = (31000...31003).map { uri("udp://198.18.0.7:\($0)") }
        for (mapping, reporter) in zip(mappings, [a, b, c, a]) {
            _ = uris.noteReached(at: mapping, isBound: false, isOwnHost: false)
            _ = uris.learn(mapping, from: reporter, isBound: false, isOwnHost: false)
        }
        XCTAssertEqual(uris.natMappings, Set(mappings))
        XCTAssertEqual(uris.advertised(from: [bound] + mappings), [mappings[3], bound])
        let tcp = uri("tcp://198.18.0.7:32000")
        _ = uris.learn(tcp, from: a, isBound: false, isOwnHost: false)
        XCTAssertEqual(uris.advertised(from: [bound] + mappings + [tcp]), [tcp, mappings[3], bound],
                       "one per scheme and address")
    }

    /// Two peers that see us at two ports of one address tell us our NAT maps per peer; two peers that see one
    /// port, that it does not. One peer seeing a new port is a rebinding, and stream transports' source ports
    /// say nothing.
    func testTwoPeersSeeingTwoPortsMeanTheNATMapsPerPeer() {
        var uris = PublicURIs()
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false, isOwnHost: false).mapsPerPeerChanged, false)
        XCTAssertFalse(uris.mapsPerPeer, "one view is not enough")
        let second = uris.learn(uri("udp://198.18.0.7:31001"), from: b, isBound: false, isOwnHost: false)
        XCTAssertTrue(uris.mapsPerPeer)
        XCTAssertEqual(second, .init(isNewest: true, rebound: false, reachabilityChanged: false, mapsPerPeerChanged: true))
        _ = uris.learn(uri("udp://198.18.0.7:31002"), from: c, isBound: false, isOwnHost: false)
        XCTAssertTrue(uris.mapsPerPeer, "a third peer, a third port")
        let shared = uris.learn(uri("udp://198.18.0.7:31002"), from: a, isBound: false, isOwnHost: false)
        XCTAssertFalse(uris.mapsPerPeer, "two peers saw one port: one mapping for all")
        XCTAssertTrue(shared.mapsPerPeerChanged)

        var rebinding = PublicURIs()
        _ = rebinding.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false, isOwnHost: false)
        _ = rebinding.learn(uri("udp://198.18.0.7:31001"), from: a, isBound: false, isOwnHost: false)
        XCTAssertFalse(rebinding.mapsPerPeer, "the same peer seeing a new port: the NAT rebound")
        _ = rebinding.learn(uri("udp://198.18.0.7:31001"), from: b, isBound: false, isOwnHost: false)
        _ = rebinding.learn(uri("udp://198.18.0.7:32000"), from: c, isBound: false, isOwnHost: false)
        XCTAssertFalse(rebinding.mapsPerPeer, "after a mapping two peers saw, a new port is a rebinding")

        var stream = PublicURIs()
        _ = stream.learn(uri("tcp://198.18.0.7:31000"), from: a, isBound: false, isOwnHost: false, isMapping: false)
        _ = stream.learn(uri("tcp://198.18.0.7:31001"), from: b, isBound: false, isOwnHost: false, isMapping: false)
        XCTAssertFalse(stream.mapsPerPeer, "every tcp connection has a source port of its own")

        var lan = PublicURIs()
        _ = lan.learn(uri("udp://198.19.1.2:4000"), from: a, isBound: true, isOwnHost: true)
        _ = lan.learn(uri("udp://198.18.0.7:31001"), from: b, isBound: false, isOwnHost: false)
        XCTAssertFalse(lan.mapsPerPeer, "a LAN peer sees our own address, not another mapping")
    }

    /// Peers beyond our NAT that saw us only over stream connections mean a firewall lets out no datagram of
    /// ours (`Node.punchesNothing`); one datagram mapping a peer saw or reached us at says otherwise, and a LAN
    /// peer reaching our datagram socket where it is bound says nothing about what gets past the NAT.
    func testOnlyStreamsGetOutUntilAPeerBeyondOurNATSeesADatagramOfOurs() {
        var uris = PublicURIs()
        XCTAssertFalse(uris.onlyStreamsGetOut, "nobody saw us yet")
        _ = uris.learn(uri("udp://198.19.5.13:4000"), from: a, isBound: true, isOwnHost: true)
        _ = uris.learn(uri("tls://198.18.5.2:40001"), from: b, isBound: false, isOwnHost: false, isMapping: false)
        XCTAssertTrue(uris.onlyStreamsGetOut, "a LAN peer over udp, a peer beyond the NAT over tls only")
        _ = uris.learn(uri("udp://198.18.5.2:4000"), from: c, isBound: false, isOwnHost: false)
        XCTAssertFalse(uris.onlyStreamsGetOut)

        var reached = PublicURIs()
        _ = reached.noteReached(at: uri("tcp://198.18.5.2:40002"), isBound: false, isOwnHost: false, isMapping: false)
        XCTAssertTrue(reached.onlyStreamsGetOut)
        _ = reached.noteReached(at: uri("udp://198.18.5.2:4000"), isBound: false, isOwnHost: false)
        XCTAssertFalse(reached.onlyStreamsGetOut, "a peer reached our datagram socket at its mapping")
    }

    func testAPeerReachingUsWhereWeAreBoundMeansNoNAT() {
        var uris = PublicURIs()
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.1:4000"), isBound: false, isOwnHost: true))
        _ = uris.learn(uri("udp://198.18.0.1:4000"), from: a, isBound: false, isOwnHost: true)
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.1:4000"), isBound: true, isOwnHost: true),
                       "a URI a peer reported before is a NAT mapping our transport lists")
        XCTAssertTrue(uris.noteReached(at: uri("udp://198.18.0.2:4000"), isBound: true, isOwnHost: true))
        XCTAssertTrue(uris.isReachableDirectly)
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.3:4000"), isBound: true, isOwnHost: true), "once")
    }

    /// A node behind a NAT with another node on its LAN: the LAN peer reaches it at its private address (where
    /// it is bound), everyone else at its NAT's mapping. For them it is behind a NAT (so it must list relay
    /// URIs), in whichever order the two reports come.
    func testANodeBehindANATWithALANPeerIsNotReachableDirectly() {
        var lanFirst = PublicURIs()
        XCTAssertTrue(lanFirst.noteReached(at: uri("udp://198.19.1.11:4000"), isBound: true, isOwnHost: true))
        XCTAssertTrue(lanFirst.isReachableDirectly)
        XCTAssertTrue(lanFirst.learn(uri("udp://198.18.2.1:3766"), from: a, isBound: false, isOwnHost: false).reachabilityChanged)
        XCTAssertFalse(lanFirst.isReachableDirectly)
        XCTAssertEqual(lanFirst.natMappings, [uri("udp://198.18.2.1:3766")])
        XCTAssertFalse(lanFirst.noteReached(at: uri("udp://198.18.2.1:3766"), isBound: true, isOwnHost: true),
                       "the mapping, listed by our transport now, is still a mapping")
        XCTAssertFalse(lanFirst.isReachableDirectly)

        var natFirst = PublicURIs()
        _ = natFirst.learn(uri("udp://198.18.2.1:3766"), from: a, isBound: false, isOwnHost: false)
        XCTAssertFalse(natFirst.learn(uri("udp://198.19.1.11:4000"), from: b, isBound: true, isOwnHost: true).reachabilityChanged)
        XCTAssertFalse(natFirst.isReachableDirectly)
    }

    /// A peer that sees a public node's outgoing TCP connection sees its own address at a port it did not bind
    /// (the connection's source port): that is no NAT.
    func testASourcePortAtOurOwnAddressIsNoNAT() {
        var uris = PublicURIs()
        _ = uris.noteReached(at: uri("udp://198.18.0.1:4000"), isBound: true, isOwnHost: true)
        _ = uris.learn(uri("tcp://198.18.0.1:51234"), from: a, isBound: false, isOwnHost: true)
        XCTAssertTrue(uris.isReachableDirectly)
        XCTAssertTrue(uris.natMappings.isEmpty)
    }

    /// A peer behind our own NAT lists the NAT's address (where others see it) before its LAN address: it is
    /// tried at its LAN address first, and at the NAT's address after its other direct URIs, before relays.
    func testAPeerBehindOurOwnNATIsTriedAtItsLANAddressFirst() {
        var uris = PublicURIs()
        let peer = [uri("udp://198.18.2.1:26171"), uri("tcp://198.18.2.1:40112"), uri("udp://198.19.1.200:4000"),
                    uri("tls://198.19.1.200:443"), uri("relay://\(String(repeating: "7", count: 40))/\(String(repeating: "8", count: 40))")]
        XCTAssertEqual(uris.inTryingOrder(peer), peer, "not behind a NAT: as the peer lists them")
        _ = uris.learn(uri("udp://198.18.9.9:4000"), from: a, isBound: false, isOwnHost: false)
        XCTAssertEqual(uris.inTryingOrder(peer), peer, "behind another NAT: as the peer lists them")
        _ = uris.learn(uri("udp://198.18.2.1:31000"), from: b, isBound: false, isOwnHost: false)
        XCTAssertEqual(uris.inTryingOrder(peer), [peer[2], peer[3], peer[0], peer[1], peer[4]])
        let onlyThroughTheNAT = [peer[0], peer[4]]
        XCTAssertEqual(uris.inTryingOrder(onlyThroughTheNAT), onlyThroughTheNAT, "nothing else to try first")
    }

    /// Behind a firewall that lets out only streams, a peer's URIs of the transports that got out go first (the
    /// first round of an attempt races its URIs 250 ms apart); the others keep their order after them, relay
    /// URIs last.
    func testOnlyStreamsGetOutTriesThoseTransportsFirst() {
        var uris = PublicURIs()
        let relay = uri("relay://\(String(repeating: "7", count: 40))/\(String(repeating: "8", count: 40))")
        let router = [uri("udp://198.18.12.6:4000"), uri("tcp://198.18.12.6:4001"), uri("tls://198.18.12.6:443")]
        _ = uris.learn(uri("tls://198.18.2.5:40001"), from: a, isBound: false, isOwnHost: false, isMapping: false)
        XCTAssertTrue(uris.onlyStreamsGetOut)
        XCTAssertEqual(uris.inTryingOrder(router), [router[2], router[0], router[1]])
        XCTAssertEqual(uris.inTryingOrder(router + [relay]), [router[2], router[0], router[1], relay])
        _ = uris.learn(uri("tcp://198.18.2.5:40002"), from: b, isBound: false, isOwnHost: false, isMapping: false)
        XCTAssertEqual(uris.inTryingOrder(router), [router[1], router[2], router[0]], "tcp got out too")
        _ = uris.learn(uri("udp://198.18.2.5:4000"), from: c, isBound: false, isOwnHost: false)
        XCTAssertEqual(uris.inTryingOrder(router), router, "a datagram got out: as the peer lists them")
    }
}

private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }
