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
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false),
                       .init(isNewest: true, rebound: false, becameReachable: false))
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31000"), from: b, isBound: false),
                       .init(isNewest: false, rebound: false, becameReachable: false), "the same again changes nothing")
        XCTAssertEqual(uris.learn(uri("tcp://198.18.0.7:32000"), from: a, isBound: false).isNewest, true)
        XCTAssertEqual(uris.advertised(from: [bound, uri("udp://198.18.0.7:31000"), uri("tcp://198.18.0.7:32000")]),
                       [uri("tcp://198.18.0.7:32000"), uri("udp://198.18.0.7:31000"), bound])
        XCTAssertEqual(uris.advertised(from: [bound]), [bound], "only what the transports list")
        XCTAssertFalse(uris.isReachableDirectly)
    }

    func testANewPortAtAnAddressTwoPeersSawIsARebinding() {
        var uris = PublicURIs()
        _ = uris.learn(uri("udp://198.18.0.7:31000"), from: a, isBound: false)
        XCTAssertEqual(uris.learn(uri("udp://198.18.0.7:31001"), from: c, isBound: false).rebound, false,
                       "one peer saw the old port: a symmetric NAT gives every peer another")
        _ = uris.learn(uri("udp://198.18.0.7:31001"), from: b, isBound: false)
        let learned = uris.learn(uri("udp://198.18.0.7:40000"), from: a, isBound: false)
        XCTAssertEqual(learned, .init(isNewest: true, rebound: true, becameReachable: false))
        XCTAssertEqual(uris.observed, [uri("udp://198.18.0.7:40000")], "the stale mapping is gone")
    }

    func testAPeerReachingUsWhereWeAreBoundMeansNoNAT() {
        var uris = PublicURIs()
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.1:4000"), isBound: false))
        _ = uris.learn(uri("udp://198.18.0.1:4000"), from: a, isBound: false)
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.1:4000"), isBound: true),
                       "a URI a peer reported before is a NAT mapping our transport lists")
        XCTAssertTrue(uris.noteReached(at: uri("udp://198.18.0.2:4000"), isBound: true))
        XCTAssertTrue(uris.isReachableDirectly)
        XCTAssertFalse(uris.noteReached(at: uri("udp://198.18.0.3:4000"), isBound: true), "once")
    }
}

private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }
