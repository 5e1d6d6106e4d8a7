import XCTest

@testable import WOWKit

/// The link handshake's outbound state machine: the actions it asks for, event by event.
final class LinkerTests: XCTestCase {
    private let peer = Address(high: 0x20 << 56, middle: 0, low: 0)
    private let stranger = Address(high: 0x90 << 56, middle: 0, low: 0)
    private let first = uri("memory://2:1")
    private let second = uri("udp://198.18.0.2:4000")

    /// Racing is off unless a test asks for it: most tests follow one try at a time.
    private func makeLinker(attemptsPerURI: Int = 3, raceDelay: Duration = .zero) -> Linker {
        var settings = NodeConfig.Linking()
        settings.replyTimeout = .seconds(2)
        settings.retryBackoff = .milliseconds(100)
        settings.attemptsPerURI = attemptsPerURI
        settings.raceDelay = raceDelay
        return Linker(settings: settings)
    }

    private func reply(_ token: UInt64, from address: Address) -> LinkReply {
        LinkReply(token: token, responder: NodeInfo(address: address, uris: [first]), observedURI: uri("memory://1:1"),
                  neighbours: [])
    }

    // MARK: Success

    func testASuccessfulAttemptOpensAnEdgeSendsARequestAndIsEstablished() {
        var linker = makeLinker()
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second],
                                    purpose: .own(connectToken: 42)),
                       [.openEdge(token: 7, uri: first)])
        XCTAssertEqual(linker.attempt(to: peer)?.token, 7)
        XCTAssertEqual(linker.attempt(token: 7)?.purpose, .own(connectToken: 42))
        XCTAssertNil(linker.attempt(token: 7)?.edge)

        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3))),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: first), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertTrue(linker.isUsing(EdgeID(3)))
        XCTAssertFalse(linker.isUsing(EdgeID(4)))

        let pending = linker.attempt(token: 7)
        let answer = reply(7, from: peer)
        let actions = linker.replyReceived(answer, on: EdgeID(3))
        guard let pending else { return XCTFail("the attempt was pending") }
        XCTAssertEqual(actions, [.established(pending, reply: answer, edge: EdgeID(3))])
        XCTAssertEqual(pending.type, "structured.near")
        XCTAssertEqual(pending.target, peer)
        XCTAssertEqual(pending.edge, EdgeID(3))

        XCTAssertNil(linker.attempt(token: 7))
        XCTAssertNil(linker.attempt(to: peer))
        XCTAssertFalse(linker.isUsing(EdgeID(3)))
        XCTAssertEqual(linker.timerFired(token: 7), [], "the reply timer of a finished attempt does nothing")
        XCTAssertEqual(linker.replyReceived(answer, on: EdgeID(3)), [], "a duplicate reply does nothing")
    }

    func testABootstrapAttemptAcceptsAnyResponder() {
        var linker = makeLinker()
        _ = linker.start(token: 1, type: .leaf, target: nil, uris: [first], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 1, result: .success(EdgeID(5)))
        let answer = reply(1, from: stranger)
        let actions = linker.replyReceived(answer, on: EdgeID(5))
        XCTAssertEqual(actions.count, 1)
        guard case .established(let attempt, let got, let edge) = actions.first else {
            return XCTFail("expected established, got \(actions)")
        }
        XCTAssertEqual(attempt.token, 1)
        XCTAssertNil(attempt.target)
        XCTAssertEqual(got, answer)
        XCTAssertEqual(edge, EdgeID(5))
    }

    // MARK: Retries and moving on

    func testURIsAreTriedInRoundsWithDoublingBackoffFromTheSecondRound() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3))),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: first), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: second)], "one try per URI per round")
        XCTAssertNil(linker.attempt(token: 7)?.edge)
        XCTAssertTrue(linker.isUsing(EdgeID(3)), "a late reply on the first edge still counts")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4))),
                       [.sendRequest(token: 7, edge: EdgeID(4), uri: second), .armTimer(token: 7, delay: .seconds(2))],
                       "the first round has no backoff")
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: first)], "round two starts over")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3))),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: first),
                        .armTimer(token: 7, delay: .seconds(2) + .milliseconds(100))])
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: second)])
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: first)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3))),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: first),
                        .armTimer(token: 7, delay: .seconds(2) + .milliseconds(200))], "the backoff doubles")
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: second)])
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        let (attempt, reason) = failure(linker.timerFired(token: 7))
        XCTAssertEqual(attempt?.token, 7)
        XCTAssertEqual(attempt?.purpose, .forPeer)
        XCTAssertEqual(reason, "no reply from udp://198.18.0.2:4000 after 3 tries")
        XCTAssertNil(linker.attempt(token: 7))
        XCTAssertEqual(linker.timerFired(token: 7), [])
    }

    func testALateReplyToAnEarlierTryCompletesTheAttempt() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        _ = linker.timerFired(token: 7)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        let actions = linker.replyReceived(reply(7, from: peer), on: EdgeID(3))
        guard case .established(_, _, let edge) = actions.first else { return XCTFail("expected established, got \(actions)") }
        XCTAssertEqual(edge, EdgeID(3))
    }

    func testBackoffStopsDoublingAfterSixSteps() {
        var linker = makeLinker(attemptsPerURI: 10)
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        var delays: [Duration] = []
        for _ in 0..<9 {
            XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: first)])
            let actions = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
            guard actions.count == 2, case .armTimer(7, let delay) = actions[1] else {
                return XCTFail("expected a retry, got \(actions)")
            }
            delays.append(delay - .seconds(2))
        }
        XCTAssertEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 6400, 6400].map { Duration.milliseconds($0) })
        XCTAssertEqual(failure(linker.timerFired(token: 7)).reason, "no reply from memory://2:1 after 10 tries")
    }

    func testFailureAfterTheLastURIReportsTheLastReason() {
        var linker = makeLinker(attemptsPerURI: 1)
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: second)])
        let unreachable = EdgeError.unreachable(second, reason: "no route to host")
        let (attempt, reason) = failure(linker.edgeOpened(token: 7, result: .failure(unreachable)))
        XCTAssertEqual(attempt?.target, peer)
        XCTAssertEqual(reason, unreachable.description)
        XCTAssertNil(linker.attempt(token: 7))
    }

    func testAnEdgeThatCannotBeOpenedMovesOnAtOnce() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .failure(.stopped)), [.openEdge(token: 7, uri: second)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4))),
                       [.sendRequest(token: 7, edge: EdgeID(4), uri: second), .armTimer(token: 7, delay: .seconds(2))])
    }

    func testAReplyFromTheWrongNodeMovesOn() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        XCTAssertEqual(linker.replyReceived(reply(7, from: stranger), on: EdgeID(3)), [.openEdge(token: 7, uri: second)])
        XCTAssertNotNil(linker.attempt(token: 7))

        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        let (_, reason) = failure(linker.replyReceived(reply(7, from: stranger), on: EdgeID(4)))
        XCTAssertEqual(reason, "udp://198.18.0.2:4000 is \(stranger.short), not \(peer.short)")
        XCTAssertNil(linker.attempt(token: 7))
    }

    func testAWrongTargetErrorMovesOn() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        let wrong = LinkError(token: 7, code: .wrongTarget, message: "I am someone else")
        XCTAssertEqual(linker.errorReceived(wrong, on: EdgeID(3)), [.openEdge(token: 7, uri: second)])
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        XCTAssertEqual(failure(linker.errorReceived(wrong, on: EdgeID(4))).reason,
                       "udp://198.18.0.2:4000: I am someone else")
    }

    // MARK: Ignored events

    func testRepliesAndErrorsOnTheWrongEdgeOrForUnknownTokensAreIgnored() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(3)), [], "no edge is open yet")

        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        let before = linker.attempt(token: 7)
        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(9)), [])
        XCTAssertEqual(linker.replyReceived(reply(8, from: peer), on: EdgeID(3)), [])
        for code in LinkError.Code.allCases {
            XCTAssertEqual(linker.errorReceived(LinkError(token: 7, code: code, message: ""), on: EdgeID(9)), [], "\(code)")
            XCTAssertEqual(linker.errorReceived(LinkError(token: 8, code: code, message: ""), on: EdgeID(3)), [], "\(code)")
        }
        XCTAssertEqual(linker.edgeOpened(token: 8, result: .success(EdgeID(3))), [])
        XCTAssertEqual(linker.timerFired(token: 8), [])
        XCTAssertEqual(linker.edgeClosed(EdgeID(9)), [])
        XCTAssertEqual(linker.attempt(token: 7), before, "nothing changed")
        XCTAssertEqual(linker.attempts.count, 1)

        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(3)).count, 1, "the right reply still counts")
    }

    // MARK: Ending

    func testReachingItselfWhereAPeerWasExpectedMovesOnButEndsABootstrapAttempt() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        XCTAssertEqual(linker.errorReceived(LinkError(token: 7, code: .selfLink, message: "you"), on: EdgeID(3)),
                       [.openEdge(token: 7, uri: second)])
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(4)))
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: second)],
                       "the URI that led back here is not tried again")

        _ = linker.start(token: 8, type: .leaf, target: nil, uris: [first, second], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 8, result: .success(EdgeID(3)))
        let (attempt, reason) = failure(linker.errorReceived(LinkError(token: 8, code: .selfLink, message: "you"),
                                                             on: EdgeID(3)))
        XCTAssertEqual(attempt?.token, 8)
        XCTAssertEqual(reason, "selfLink: you")
    }

    func testRaceLostAndOtherRefusalsEndTheAttempt() {
        for code in [LinkError.Code.raceLost, .refused, .tableFull] {
            var linker = makeLinker()
            _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
            _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
            let (attempt, reason) = failure(linker.errorReceived(LinkError(token: 7, code: code, message: "no"),
                                                                 on: EdgeID(3)))
            XCTAssertEqual(attempt?.token, 7, "\(code)")
            XCTAssertEqual(reason, "\(code): no")
            XCTAssertEqual(attempt?.refusal, code, "the failure says which refusal ended it")
            XCTAssertNil(linker.attempt(token: 7), "\(code): the second URI is not tried")
        }
    }

    func testAClosedEdgeMovesEveryAttemptOnItToItsNextURI() {
        var linker = makeLinker()
        _ = linker.start(token: 9, type: .leaf, target: nil, uris: [first], purpose: .own(connectToken: nil))
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.start(token: 8, type: "structured.far", target: stranger, uris: [second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 9, result: .success(EdgeID(3)))
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        _ = linker.edgeOpened(token: 8, result: .success(EdgeID(4)))

        let actions = linker.edgeClosed(EdgeID(3))
        XCTAssertEqual(actions.count, 2)
        XCTAssertEqual(actions.first, .openEdge(token: 7, uri: second), "in token order")
        XCTAssertEqual(failure(Array(actions.dropFirst())).attempt?.token, 9)
        XCTAssertEqual(failure(Array(actions.dropFirst())).reason, "the edge closed")
        XCTAssertNil(linker.attempt(token: 9))
        XCTAssertNil(linker.attempt(token: 7)?.edge)
        XCTAssertEqual(linker.attempt(token: 8)?.edge, EdgeID(4), "an attempt on another edge is untouched")
        XCTAssertEqual(linker.edgeClosed(EdgeID(3)), [])
    }

    func testCancelDropsTheAttemptSilently() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first, second], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        XCTAssertEqual(linker.cancel(token: 7)?.token, 7)
        XCTAssertNil(linker.cancel(token: 7))
        XCTAssertNil(linker.attempt(to: peer))
        XCTAssertFalse(linker.isUsing(EdgeID(3)))
        XCTAssertEqual(linker.timerFired(token: 7), [])
        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(3)), [])
        XCTAssertEqual(linker.errorReceived(LinkError(token: 7, code: .raceLost, message: ""), on: EdgeID(3)), [])
        XCTAssertEqual(linker.edgeClosed(EdgeID(3)), [])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3))), [])
    }

    /// The peer's own request made the connection on edge 9 while ours was out on edge 3: if the peer still
    /// answers ours, it moved its connection to edge 3, and the reply completes our attempt there after all.
    func testAReplyToAYieldedAttemptCompletesItOnThatEdge() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        let yielded = linker.yield(token: 7, to: EdgeID(9))
        XCTAssertEqual(yielded?.token, 7)
        XCTAssertNil(linker.attempt(to: peer))
        XCTAssertFalse(linker.isUsing(EdgeID(3)))
        XCTAssertEqual(linker.replyReceived(reply(7, from: stranger), on: EdgeID(3)), [], "another node's reply")
        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(9)), [], "not an edge the attempt tried")
        let answer = reply(7, from: peer)
        guard let yielded else { return XCTFail("nothing yielded") }
        XCTAssertEqual(linker.replyReceived(answer, on: EdgeID(3)), [.established(yielded, reply: answer, edge: EdgeID(3))])
        XCTAssertEqual(linker.replyReceived(answer, on: EdgeID(3)), [], "once only")
    }

    /// A yielded attempt whose request was withdrawn (its edge closed before the request left) is forgotten.
    func testAYieldedAttemptWithNoRequestLeftIsForgotten() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [first], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)))
        _ = linker.yield(token: 7, to: EdgeID(9))
        linker.withdraw(EdgeID(3), fromYielded: 7)
        XCTAssertEqual(linker.replyReceived(reply(7, from: peer), on: EdgeID(3)), [])
        // Yielding on the very edge the request went out on leaves nothing to answer.
        _ = linker.start(token: 8, type: "structured.near", target: peer, uris: [first], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 8, result: .success(EdgeID(4)))
        _ = linker.yield(token: 8, to: EdgeID(4))
        XCTAssertEqual(linker.replyReceived(reply(8, from: peer), on: EdgeID(4)), [])
    }

    func testAnAttemptWithoutURIsFailsAtOnce() {
        var linker = makeLinker()
        let (attempt, reason) = failure(linker.start(token: 7, type: "structured.near", target: peer, uris: [],
                                                     purpose: .forPeer))
        XCTAssertEqual(attempt?.token, 7)
        XCTAssertEqual(attempt?.target, peer)
        XCTAssertEqual(reason, "the peer has no URI")
        XCTAssertNil(linker.attempt(token: 7))
        XCTAssertTrue(linker.attempts.isEmpty)
    }

    // MARK: Racing (happy eyeballs)

    private let udp = uri("udp://198.18.0.2:4000")
    private let tcp = uri("tcp://198.18.0.2:4001")
    private let tls = uri("tls://198.18.0.2:443")
    private let race = Duration.milliseconds(250)

    func testTheFirstRoundRacesItsURIsAndEveryEdgeThatOpensGetsTheRequest() {
        var linker = makeLinker(raceDelay: race)
        XCTAssertEqual(linker.start(token: 7, type: .leaf, target: nil, uris: [udp, tcp, tls], purpose: .own(connectToken: nil)),
                       [.armTimer(token: 7, delay: race), .openEdge(token: 7, uri: udp)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), uri: udp),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: udp)], "the race timer runs from the try's start")
        XCTAssertEqual(linker.timerFired(token: 7), [.armTimer(token: 7, delay: race), .openEdge(token: 7, uri: tcp)],
                       "no reply within the race delay: the next URI starts beside it")
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: tls)],
                       "the tcp edge is still opening; the last URI waits a full reply timeout")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(5)), uri: tls),
                       [.sendRequest(token: 7, edge: EdgeID(5), uri: tls), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4)), uri: tcp),
                       [.sendRequest(token: 7, edge: EdgeID(4), uri: tcp)], "a racing edge that opens late still gets its request")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(6)), uri: tcp), [], "once")
        XCTAssertTrue(linker.isUsing(EdgeID(3)) && linker.isUsing(EdgeID(4)) && linker.isUsing(EdgeID(5)))
        guard let pending = linker.attempt(token: 7) else { return XCTFail("the attempt is pending") }
        let answer = reply(7, from: peer)
        XCTAssertEqual(linker.replyReceived(answer, on: EdgeID(4)), [.established(pending, reply: answer, edge: EdgeID(4))],
                       "the first reply wins, on whichever edge")
        XCTAssertEqual(linker.replyReceived(answer, on: EdgeID(5)), [])
    }

    func testARacingTryThatFailsMovesOnAtOnceAndFailedURIsLeaveLaterRounds() {
        var linker = makeLinker(raceDelay: race)
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [udp, tcp, tls], purpose: .own(connectToken: 1))
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .failure(.unreachable(udp, reason: "no route")), uri: udp),
                       [.armTimer(token: 7, delay: race), .openEdge(token: 7, uri: tcp)])
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: tls)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .failure(.unreachable(tcp, reason: "connection refused")), uri: tcp), [],
                       "a racing edge that cannot open drops out quietly")
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(5)), uri: tls)
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: tls)],
                       "the next round skips the URIs whose edges could not open, and does not race")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(5)), uri: tls),
                       [.sendRequest(token: 7, edge: EdgeID(5), uri: tls),
                        .armTimer(token: 7, delay: .seconds(2) + .milliseconds(100))])
    }

    func testATryWhosePeerAnsweredOnItsEdgeStopsRacing() {
        var linker = makeLinker(raceDelay: race)
        _ = linker.start(token: 7, type: .leaf, target: nil, uris: [udp, tcp], purpose: .own(connectToken: nil))
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)), uri: udp)
        XCTAssertEqual(linker.timerFired(token: 7, edgeAnswered: true), [.armTimer(token: 7, delay: .seconds(2))],
                       "the secure handshake on the udp edge completed: the path works, wait for its reply")
        XCTAssertFalse(linker.attempt(token: 7)?.isRacing ?? true)
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: tcp)], "no reply after all: move on")
    }

    func testAttemptsThatPunchOrHaveOneURIDoNotRace() {
        var linker = makeLinker(raceDelay: race)
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer),
                       [.openEdge(token: 7, uri: natPublic)], "a CTM toward a NATed peer punches, one edge at a time")
        XCTAssertEqual(linker.start(token: 8, type: .leaf, target: nil, uris: [udp], purpose: .own(connectToken: nil)),
                       [.openEdge(token: 8, uri: udp)], "nothing to race")
        XCTAssertEqual(linker.edgeOpened(token: 8, result: .success(EdgeID(3)), uri: udp),
                       [.sendRequest(token: 8, edge: EdgeID(3), uri: udp), .armTimer(token: 8, delay: .seconds(2))])
        XCTAssertEqual(makeLinker().settings.raceDelay, .zero)
        XCTAssertEqual(NodeConfig.Linking().raceDelay, .milliseconds(250), "racing is on by default")
    }

    /// A pair no direct path joins: the relay URI starts beside the punched direct tries once `relayAfter`
    /// passed, and its reply makes the connection while the direct try still waits.
    func testRelayURIsStartBesideTheDirectOnesOnceRelayAfterPassed() {
        var linker = makeLinker()
        let relayed = uri("relay://0123456789abcdef0123456789abcdef01234567/2000000000000000000000000000000000000000")
        XCTAssertEqual(linker.settings.relayAfter, .milliseconds(1500))
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: natted + [relayed],
                                    purpose: .forPeer, fallbackURIs: [relayed]),
                       [.armFallbackTimer(token: 7, delay: .milliseconds(1500)), .openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true, uri: natPublic),
                       [.punch(token: 7, edge: EdgeID(3), ttl: 2), .armTimer(token: 7, delay: .milliseconds(500))])
        XCTAssertEqual(linker.fallbackTimerFired(token: 7), [.openEdge(token: 7, uri: relayed)])
        XCTAssertEqual(linker.fallbackTimerFired(token: 7), [], "the relay starts once")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(9)), uri: relayed),
                       [.sendRequest(token: 7, edge: EdgeID(9), uri: relayed)])
        XCTAssertEqual(linker.attempt(token: 7)?.edge, EdgeID(3), "the direct try goes on beside it")
        guard case .established(_, _, let edge)? = linker.replyReceived(reply(7, from: peer), on: EdgeID(9)).first else {
            return XCTFail("the relay's reply must complete the attempt")
        }
        XCTAssertEqual(edge, EdgeID(9))
        XCTAssertEqual(linker.fallbackTimerFired(token: 7), [], "nothing left to start")

        // No timer without fallback URIs (no tunnelling transport, no forwarder connected), with only relay
        // URIs, or with relayAfter 0.
        XCTAssertEqual(linker.start(token: 8, type: "structured.near", target: peer, uris: natted + [relayed], purpose: .forPeer),
                       [.openEdge(token: 8, uri: natPublic)])
        XCTAssertEqual(linker.start(token: 9, type: "structured.near", target: peer, uris: [relayed], purpose: .forPeer,
                                    fallbackURIs: [relayed]), [.openEdge(token: 9, uri: relayed)])
        var settings = NodeConfig.Linking()
        settings.relayAfter = .zero
        var off = Linker(settings: settings)
        XCTAssertEqual(off.start(token: 10, type: "structured.near", target: peer, uris: natted + [relayed], purpose: .forPeer,
                                 fallbackURIs: [relayed]), [.openEdge(token: 10, uri: natPublic)])
    }

    /// The peer's relay URI arrives after the attempt began (it learned it was behind a NAT a moment later):
    /// the fallback is armed then, and a relay URI learned after the fallback started opens at once.
    func testRelayURIsLearnedLaterStillStartBesideTheDirectOnes() {
        var linker = makeLinker()
        let relayed = uri("relay://0123456789abcdef0123456789abcdef01234567/2000000000000000000000000000000000000000")
        let other = uri("relay://1123456789abcdef0123456789abcdef01234567/2000000000000000000000000000000000000000")
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer),
                       [.openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.peerWillLink(token: 7, uris: natted + [relayed], fallbackURIs: [relayed]),
                       [.armFallbackTimer(token: 7, delay: .milliseconds(1500))])
        XCTAssertEqual(linker.fallbackTimerFired(token: 7), [.openEdge(token: 7, uri: relayed)])
        XCTAssertEqual(linker.peerPunched(token: 7, uris: natted + [relayed, other], fallbackURIs: [relayed, other]),
                       [.openEdge(token: 7, uri: other)], "started already: a new relay URI opens at once, a known one not again")
    }

    /// A pair no direct path can join (a NAT that maps per peer facing a NAT): the relay starts at once beside
    /// the direct tries, and learning it later ends a wait already armed.
    func testAPairThatCannotPunchRelaysAtOnce() {
        var linker = makeLinker()
        let relayed = uri("relay://0123456789abcdef0123456789abcdef01234567/2000000000000000000000000000000000000000")
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: natted + [relayed],
                                    purpose: .forPeer, fallbackURIs: [relayed], relayAtOnce: true),
                       [.armFallbackTimer(token: 7, delay: .zero), .openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.fallbackTimerFired(token: 7), [.openEdge(token: 7, uri: relayed)])

        // Armed for relayAfter; then the peer's URIs show it cannot punch: the timer is armed again, at zero.
        XCTAssertEqual(linker.start(token: 8, type: "structured.near", target: peer, uris: natted + [relayed],
                                    purpose: .forPeer, fallbackURIs: [relayed]),
                       [.armFallbackTimer(token: 8, delay: .milliseconds(1500)), .openEdge(token: 8, uri: natPublic)])
        XCTAssertEqual(linker.peerWillLink(token: 8, uris: natted + [relayed], fallbackURIs: [relayed], relayAtOnce: true),
                       [.armFallbackTimer(token: 8, delay: .zero)])
        XCTAssertEqual(linker.peerWillLink(token: 8, uris: natted + [relayed], fallbackURIs: [relayed], relayAtOnce: true),
                       [], "once")
        XCTAssertEqual(linker.fallbackTimerFired(token: 8), [.openEdge(token: 8, uri: relayed)])

        // relay_after_ms 0 turns early relays off, for such pairs too.
        var settings = NodeConfig.Linking()
        settings.relayAfter = .zero
        var off = Linker(settings: settings)
        XCTAssertEqual(off.start(token: 9, type: "structured.near", target: peer, uris: natted + [relayed], purpose: .forPeer,
                                 fallbackURIs: [relayed], relayAtOnce: true), [.openEdge(token: 9, uri: natPublic)])
    }

    /// `requestAlso` sends the attempt's request on the edge the peer's came by, which then counts as tried:
    /// a reply there completes the attempt.
    func testARequestGoesAlsoWhereThePeersCameBy() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [udp], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)), uri: udp)
        let seen = uri("udp://198.18.0.2:40123")
        XCTAssertEqual(linker.requestAlso(token: 7, on: EdgeID(4), uri: seen), [.sendRequest(token: 7, edge: EdgeID(4), uri: seen)])
        XCTAssertEqual(linker.requestAlso(token: 8, on: EdgeID(4), uri: seen), [], "no such attempt")
        guard case .established(_, _, let edge)? = linker.replyReceived(reply(7, from: peer), on: EdgeID(4)).first else {
            return XCTFail("a reply on that edge must complete the attempt")
        }
        XCTAssertEqual(edge, EdgeID(4))
    }

    // MARK: Hole punching

    /// A NATed peer's URIs: the public one peers saw it at, then its own (LAN) address and loopback.
    private let natPublic = uri("udp://198.18.0.12:4000")
    private let natLAN = uri("udp://198.19.2.2:4000")
    private var natted: [TransportURI] { [natPublic, natLAN, uri("udp://127.0.0.1:4000")] }

    func testAPeerListingMoreThanOneHostOtherThanLoopbackMayBeBehindANAT() {
        XCTAssertTrue(Linker.mayBeBehindNAT(natted))
        XCTAssertTrue(Linker.mayBeBehindNAT([uri("memory://1000005:40000"), uri("memory://5:1")]))
        XCTAssertFalse(Linker.mayBeBehindNAT([uri("udp://198.18.0.1:4000")]))
        XCTAssertFalse(Linker.mayBeBehindNAT([uri("udp://198.18.0.1:4000"), uri("tcp://198.18.0.1:4001"),
                                              uri("udp://127.0.0.1:4000"), uri("udp://[::1]:4000")]),
                       "one host on several transports and loopback")
        XCTAssertFalse(Linker.mayBeBehindNAT([natLAN, uri("udp://127.0.0.1:4000")]),
                       "a NATed node that has not learned its public URI names no way to its NAT")
        XCTAssertFalse(Linker.mayBeBehindNAT([]))
        XCTAssertFalse(Linker.mayBeBehindNAT([uri("relay://x"), uri("other://y")]), "no host:port")
    }

    func testACTMRecipientPunchesThenHoldsItsFirstRequestUntilTheHoldEnds() {
        var linker = makeLinker()
        XCTAssertEqual(linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer),
                       [.openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.attempt(token: 7)?.opening, .punchThenWait)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(3), ttl: 2), .armTimer(token: 7, delay: .milliseconds(500))])
        XCTAssertEqual(linker.attempt(token: 7)?.isHolding, true)
        XCTAssertEqual(linker.attempt(token: 7)?.hasSentRequest, false, "so it may yield to the peer's request")
        XCTAssertTrue(linker.isUsing(EdgeID(3)))

        // The peer did not link within the hold: go ahead, and wait no more on the next URI.
        XCTAssertEqual(linker.timerFired(token: 7),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: natPublic), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.attempt(token: 7)?.hasSentRequest, true)
        XCTAssertEqual(linker.attempt(token: 7)?.opening, .punchThenSend)
        XCTAssertEqual(linker.timerFired(token: 7), [.openEdge(token: 7, uri: natLAN)], "then goes on as usual")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(4), ttl: 2), .sendRequest(token: 7, edge: EdgeID(4), uri: natLAN),
                        .armTimer(token: 7, delay: .seconds(2))])
    }

    func testTheCTMReplyReleasesAHeldRequestAtOnce() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .own(connectToken: 42))
        XCTAssertEqual(linker.attempt(token: 7)?.opening, .punchThenWait, "a requester linking before the reply waits too")
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true)
        XCTAssertEqual(linker.peerPunched(token: 7, uris: natted),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: natPublic), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.attempt(token: 7)?.isHolding, false)
        XCTAssertEqual(linker.peerPunched(token: 7, uris: natted), [], "nothing held any more")
        XCTAssertEqual(linker.peerPunched(token: 99, uris: natted), [], "unknown token")
    }

    func testTheCTMReplyBeforeTheEdgeIsOpenMakesItSendAtOnce() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer)
        XCTAssertEqual(linker.peerPunched(token: 7, uris: []), [])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(3), ttl: 2), .sendRequest(token: 7, edge: EdgeID(3), uri: natPublic),
                        .armTimer(token: 7, delay: .seconds(2))])
    }

    func testTheCTMReplyMovesAnAttemptOnStaleURIsToThePeersPublicOne() {
        var linker = makeLinker()
        // Learned from a neighbour list before the peer knew its public URI: it looks public, nothing to wait for.
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [natLAN], purpose: .own(connectToken: 42))
        XCTAssertEqual(linker.attempt(token: 7)?.opening, .direct)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true),
                       [.sendRequest(token: 7, edge: EdgeID(3), uri: natLAN), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.peerPunched(token: 7, uris: natted), [.openEdge(token: 7, uri: natPublic)])
        XCTAssertNil(linker.attempt(token: 7)?.edge)
        XCTAssertEqual(linker.timerFired(token: 7), [], "the old edge's reply timer does nothing")
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4)), canPunch: true),
                       [.sendRequest(token: 7, edge: EdgeID(4), uri: natPublic), .armTimer(token: 7, delay: .seconds(2))])
        XCTAssertEqual(linker.attempt(token: 7)?.uris, natted)
    }

    func testACTMFromAPeerWeAreLinkingToMovesUsToItsPublicURIAndWaits() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [natLAN], purpose: .forPeer)
        _ = linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true)
        XCTAssertEqual(linker.peerWillLink(token: 7, uris: natted), [.openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.attempt(token: 7)?.opening, .punchThenWait)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(4), ttl: 2), .armTimer(token: 7, delay: .milliseconds(500))])
        XCTAssertEqual(linker.peerWillLink(token: 7, uris: natted), [], "already there")
        XCTAssertEqual(linker.attempt(token: 7)?.isHolding, true)
    }

    func testAnEdgeOpenedForAURIThePeerMovedAwayFromIsIgnored() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [natLAN], purpose: .forPeer)
        XCTAssertEqual(linker.peerWillLink(token: 7, uris: natted), [.openEdge(token: 7, uri: natPublic)])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true, uri: natLAN), [])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .failure(.stopped), uri: natLAN), [])
        XCTAssertNil(linker.attempt(token: 7)?.edge)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(4)), canPunch: true, uri: natPublic),
                       [.punch(token: 7, edge: EdgeID(4), ttl: 2), .armTimer(token: 7, delay: .milliseconds(500))])
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(5)), canPunch: true, uri: natPublic), [],
                       "a second result for the same try")
    }

    func testAnAttemptStartedByTheCTMReplyPunchesAndSendsAtOnce() {
        var linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .own(connectToken: 42),
                         peerHasPunched: true)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(3), ttl: 2), .sendRequest(token: 7, edge: EdgeID(3), uri: natPublic),
                        .armTimer(token: 7, delay: .seconds(2))])
    }

    func testNoPunchOrWaitForBootstrapURIsPublicPeersOrEdgesThatCannotPunch() {
        let sendAtOnce: [Linker.Action] = [.sendRequest(token: 7, edge: EdgeID(3), uri: natPublic),
                                           .armTimer(token: 7, delay: .seconds(2))]
        var linker = makeLinker()
        _ = linker.start(token: 7, type: .leaf, target: nil, uris: natted, purpose: .own(connectToken: nil))
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true), sendAtOnce, "bootstrap")

        linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: [natPublic], purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true), sendAtOnce, "public peer")

        linker = makeLinker()
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: false), sendAtOnce, "tcp, tls")

        var settings = NodeConfig.Linking()
        settings.replyTimeout = .seconds(2)
        settings.raceDelay = .zero
        settings.punchTTL = 0
        linker = Linker(settings: settings)
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true), sendAtOnce, "punch_ttl 0")

        settings.punchTTL = 3
        settings.punchHold = .zero
        linker = Linker(settings: settings)
        _ = linker.start(token: 7, type: "structured.near", target: peer, uris: natted, purpose: .forPeer)
        XCTAssertEqual(linker.edgeOpened(token: 7, result: .success(EdgeID(3)), canPunch: true),
                       [.punch(token: 7, edge: EdgeID(3), ttl: 3)] + sendAtOnce, "punch_hold_ms 0")
    }

    // MARK: Helpers

    /// The attempt and reason of a lone `failed` action; nils (and a test failure) for anything else.
    private func failure(_ actions: [Linker.Action], file: StaticString = #filePath, line: UInt = #line)
        -> (attempt: Linker.Attempt?, reason: String?) {
        guard actions.count == 1, case .failed(let attempt, let reason) = actions[0] else {
            XCTFail("expected one failed action, got \(actions)", file: file, line: line)
            return (nil, nil)
        }
        return (attempt, reason)
    }
}

/// Test literals only: a bad one is a bug in this file.
private func uri(_ text: String) -> TransportURI { try! TransportURI(text) }
