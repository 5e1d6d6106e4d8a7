/// The outbound side of the link handshake, as a state machine (Brunet's Linker).
///
/// One attempt tries the URIs of a peer in rounds: each URI once per round, in order, each try waiting a reply
/// timeout (plus a backoff that doubles from the second round on), for up to `attemptsPerURI` rounds, until a
/// `LinkReply` arrives on any edge it tried or every URI failed. Rounds rather than retrying one URI first mean
/// a later URI (a relay, listed last) is tried after one timeout per earlier URI, not after all their retries;
/// a late reply to an earlier try still counts.
///
/// The first round races its URIs (happy eyeballs, RFC 8305): where the attempt sends at once (`.direct`), the
/// next URI starts `raceDelay` after the previous one without waiting for its reply or even its edge, and every
/// edge that opens gets its request; the first reply wins. A site whose firewall drops udp silently thus links
/// over tcp or tls a few hundred milliseconds later, not after a reply timeout per blocked URI. Attempts that
/// punch do not race: their requests must wait for the peer's punch on one edge at a time. The node feeds it events (edge opened,
/// reply, error, timer) and carries out the returned actions. It holds no edges, sockets or timers itself.
///
/// Relay URIs through a forwarder the node is connected to are also a fallback that does not wait its turn:
/// an attempt that has direct URIs too opens them beside the direct ones `relayAfter` after it started (like
/// a racing try: a reply on that edge counts as any other), so a pair no direct path joins is linked within a
/// second or two instead of after every direct try timed out. The relayed connection moves to a direct edge
/// when one answers later (`RelayUpkeep`).
///
/// NAT traversal (docs/architecture.md, "Hole punching"): an attempt that is part of a Connect-To-Me toward a
/// peer that may be behind a NAT punches on each URI's edge before its first request there (`.punch`:
/// packets with a small IP TTL that open our own NAT and die before the peer's). Until the peer has punched
/// toward us, it also holds that request back, for up to `punchHold`: our normal packets must reach the
/// peer's NAT only after the peer punched, or a Linux NAT (MASQUERADE with its INPUT chain open) keeps a
/// conntrack entry for them and maps the peer's own packets to us to another port. The CTM recipient punches
/// toward the URIs in the CTM as it replies (`peerWillLink` when it is linking to the requester already), so
/// the reply tells the requester that it may send at once (`peerPunched`); the requester's link request
/// reaching the recipient tells it the same (the node then cancels the held attempt and accepts).
public struct Linker {
    /// Why an attempt was made: for one of our own overlords, or because a peer's CTM asked us to link.
    public enum Purpose: Equatable, Sendable {
        /// Our own request; `connectToken` names the pending CTM it serves, if any.
        case own(connectToken: UInt64?)
        /// A peer's Connect-To-Me: the type is the peer's, not ours.
        case forPeer
    }

    /// How an attempt gets through NATs before its first link request.
    public enum Opening: Equatable, Sendable {
        /// Link requests at once: bootstrap URIs, peers that are not behind a NAT, punching turned off.
        case direct
        /// Punch on each URI's edge, then send at once: the peer has punched toward us already (or we waited
        /// for it long enough).
        case punchThenSend
        /// Punch on each URI's edge, then hold the first link request there until the peer has punched
        /// (`peerPunched`), its own link request arrives, or `punchHold` passes; then as `punchThenSend`.
        case punchThenWait
    }

    public struct Attempt: Sendable, Equatable {
        public var token: UInt64
        public var type: ConnectionType
        /// The node we expect; nil for bootstrap URIs.
        public var target: Address?
        public var uris: [TransportURI]
        public var purpose: Purpose
        var uriIndex = 0
        /// Rounds completed over the URIs.
        var round = 0
        /// URIs that cannot work (the edge could not be opened, another node answered there): skipped in
        /// later rounds.
        var deadURIs: Set<TransportURI> = []
        /// The edge the current try uses, once open.
        public var edge: EdgeID?
        /// Whether the current try races the next URI: its timer moves on after `raceDelay`, not a reply timeout.
        public internal(set) var isRacing = false
        /// URIs of earlier tries in a race whose edge was still opening when the attempt moved on: such an edge,
        /// once open, gets its request too.
        var racingOpens: Set<TransportURI> = []
        /// Every edge a request went out on: a reply on any of them completes the attempt.
        public var edgesTried: Set<EdgeID> = []
        /// The last reason a try failed, reported if the whole attempt fails.
        var lastFailure = "no URI to try"
        /// The peer's refusal that ended the attempt, if one did (`raceLost`, `refused`, ...).
        public internal(set) var refusal: LinkError.Code?
        /// How the attempt gets through NATs.
        public internal(set) var opening: Opening = .direct
        /// Whether a link request of this attempt went out. Until then the peer cannot have seen the attempt,
        /// so it may yield to the peer's own request whatever the addresses (no race to resolve).
        public internal(set) var hasSentRequest = false
        /// Whether the request is held back, waiting for the peer (the armed timer ends the wait).
        public internal(set) var isHolding = false
        /// When the node started the attempt (for the link latency it reports).
        public internal(set) var startedAt: Timestamp = .zero
        /// Relay URIs waiting for `relayAfter` to pass, and those opened beside the direct tries since.
        var fallbackURIs: [TransportURI] = []
        var fallbackOpened: Set<TransportURI> = []
        /// How long after the start relay URIs wait: `relayAfter`, or nothing for a pair no direct path can
        /// join (`start(relayAtOnce:)`).
        var fallbackDelay: Duration = .zero
        /// Whether the fallback timer is armed, and whether it fired.
        var isFallbackArmed = false
        var isFallbackStarted = false
    }

    /// What the node must do.
    public enum Action: Equatable, Sendable {
        /// Open (or reuse) an edge to `uri` and report back with `edgeOpened`.
        case openEdge(token: UInt64, uri: TransportURI)
        /// Send a `LinkRequest` for `token` on `edge`, to `uri`.
        case sendRequest(token: UInt64, edge: EdgeID, uri: TransportURI)
        /// Call `edge`'s `HolePunchingEdge.punch(ttl:)`; nothing if it cannot punch.
        case punch(token: UInt64, edge: EdgeID, ttl: UInt8)
        /// Call `timerFired(token:)` after `delay`, replacing the attempt's armed timer if any.
        case armTimer(token: UInt64, delay: Duration)
        /// Call `fallbackTimerFired(token:)` after `delay` (a timer of its own beside `armTimer`'s).
        case armFallbackTimer(token: UInt64, delay: Duration)
        /// The handshake succeeded: make the connection from the reply.
        case established(Attempt, reply: LinkReply, edge: EdgeID)
        /// Every URI failed.
        case failed(Attempt, reason: String)
    }

    public let settings: NodeConfig.Linking
    public private(set) var attempts: [UInt64: Attempt] = [:]
    /// Attempts given up for the peer's own request (`yield`) while a request of theirs may still reach the
    /// peer, oldest first. The peer answers such a request on its edge, moving its connection there: the reply
    /// completes the attempt after all (`.established`), so both ends use that edge.
    private var yielded: [(token: UInt64, attempt: Attempt)] = []
    /// How many yielded attempts are remembered.
    static let maximumYielded = 64

    public init(settings: NodeConfig.Linking) { self.settings = settings }

    /// The pending attempt to `address`, if any; of two (a leaf and a near link to one peer), the one started
    /// first: the same one every time, whatever order the dictionary keeps.
    public func attempt(to address: Address) -> Attempt? {
        attempts.values.lazy.filter { $0.target == address }.min { ($0.startedAt, $0.token) < ($1.startedAt, $1.token) }
    }

    public func attempt(token: UInt64) -> Attempt? { attempts[token] }

    /// The connect tokens (`Purpose.own`) that running attempts serve: such a connect may still succeed
    /// through its attempt when its CTM went unanswered or undelivered.
    public var servedConnects: Set<UInt64> {
        Set(attempts.values.compactMap { if case .own(let token?) = $0.purpose { return token } else { return nil } })
    }

    /// Whether any attempt is using `edge`.
    public func isUsing(_ edge: EdgeID) -> Bool { attempts.values.contains { $0.edge == edge || $0.edgesTried.contains(edge) } }

    /// Starts an attempt. `peerHasPunched`: the peer's Connect-To-Me reply arrived, so it punched toward us
    /// already and we need not wait for it.
    /// `fallbackURIs`: those of `uris` that go through a tunnelling transport (`relay`) and may start beside
    /// the direct ones after `relayAfter` (the node names those whose forwarder it holds a connection to, so
    /// starting early costs no new connection). `relayAtOnce`: no direct path can join the pair (a NAT that
    /// maps per peer on one side, a NAT on the other), so they start at once rather than after `relayAfter`.
    public mutating func start(token: UInt64, type: ConnectionType, target: Address?, uris: [TransportURI],
                               purpose: Purpose, peerHasPunched: Bool = false, at now: Timestamp = .zero,
                               fallbackURIs: [TransportURI] = [], relayAtOnce: Bool = false) -> [Action] {
        var attempt = Attempt(token: token, type: type, target: target, uris: uris, purpose: purpose)
        attempt.startedAt = now
        attempt.fallbackDelay = relayAtOnce ? .zero : settings.relayAfter
        attempt.opening = opening(purpose: purpose, uris: uris, peerHasPunched: peerHasPunched)
        guard !uris.isEmpty else { return [.failed(attempt, reason: "the peer has no URI")] }
        attempts[token] = attempt
        return offerFallback(fallbackURIs, token, relayAtOnce: relayAtOnce) + open(token)
    }

    /// Relay URIs (among the attempt's) that may start beside the direct tries: armed to start `relayAfter`
    /// from now, or opened at once if the attempt's relay already started. The peer's URIs change as it
    /// learns its own (a Connect-To-Me reply, its link request): each new list brings its relay URIs here, and
    /// may show that no direct path can join the pair (`relayAtOnce`): a wait already armed ends now.
    private mutating func offerFallback(_ uris: [TransportURI], _ token: UInt64, relayAtOnce: Bool = false) -> [Action] {
        guard settings.relayAfter > .zero, var attempt = attempts[token] else { return [] }
        let hurry = relayAtOnce && attempt.fallbackDelay > .zero && !attempt.isFallbackStarted
        if hurry { attempt.fallbackDelay = .zero }
        let fresh = uris.filter {
            attempt.uris.contains($0) && !attempt.fallbackOpened.contains($0) && !attempt.fallbackURIs.contains($0)
        }
        // Only beside direct tries: an attempt with nothing else tries them in its turn at once.
        guard !fresh.isEmpty, attempt.uris.contains(where: { !uris.contains($0) }) else {
            attempts[token] = attempt
            return hurry && attempt.isFallbackArmed ? [.armFallbackTimer(token: token, delay: .zero)] : []
        }
        if attempt.isFallbackStarted {
            let fresh = fresh.filter { $0 != attempt.uris[attempt.uriIndex] && !attempt.racingOpens.contains($0) }
            attempt.fallbackOpened.formUnion(fresh)
            attempt.racingOpens.formUnion(fresh)
            attempts[token] = attempt
            return fresh.map { .openEdge(token: token, uri: $0) }
        }
        attempt.fallbackURIs += fresh
        let arm = !attempt.isFallbackArmed || hurry
        attempt.isFallbackArmed = true
        attempts[token] = attempt
        return arm ? [.armFallbackTimer(token: token, delay: attempt.fallbackDelay)] : []
    }

    /// We learned while the attempt ran that no direct path can join us and its target (`Node.cannotPunch`:
    /// a second peer's view showed that our NAT maps per peer): its relay URIs (`fallbackURIs`) start now
    /// instead of after `relayAfter`.
    public mutating func relayNow(token: UInt64, fallbackURIs: [TransportURI]) -> [Action] {
        offerFallback(fallbackURIs, token, relayAtOnce: true)
    }

    /// `relayAfter` passed and the attempt goes on: its relay URIs open beside the current try. Each edge that
    /// opens gets a request, and a reply on it completes the attempt like any other.
    public mutating func fallbackTimerFired(token: UInt64) -> [Action] {
        guard var attempt = attempts[token], !attempt.isFallbackStarted else { return [] }
        attempt.isFallbackStarted = true
        // The current try's URI has its edge (or is opening it) already.
        let current = attempt.uris[attempt.uriIndex]
        let uris = attempt.fallbackURIs.filter { !attempt.deadURIs.contains($0) && $0 != current && !attempt.racingOpens.contains($0) }
        attempt.fallbackURIs = []
        attempt.fallbackOpened.formUnion(uris)
        attempt.racingOpens.formUnion(uris)
        attempts[token] = attempt
        return uris.map { .openEdge(token: token, uri: $0) }
    }

    /// Opens the edge of the current try, and arms the race timer when it races the next URI: in the first
    /// round, sending at once, with a later URI left to try.
    private mutating func open(_ token: UInt64) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        let index = attempt.uriIndex
        attempt.isRacing = settings.raceDelay > .zero && attempt.opening == .direct && attempt.round == 0
            && attempt.uris[(index + 1)...].contains { !attempt.deadURIs.contains($0) }
        attempts[token] = attempt
        let open = Action.openEdge(token: token, uri: attempt.uris[index])
        // The timer first: the node doubles a reply timer on an edge whose secure handshake still runs, and the
        // race's must not wait for that (an edge may open at once).
        return attempt.isRacing ? [.armTimer(token: token, delay: settings.raceDelay), open] : [open]
    }

    /// Punch only around a Connect-To-Me (the peer links toward us too, so its NAT is or will be punched) and
    /// only toward a peer that may be behind a NAT.
    private func opening(purpose: Purpose, uris: [TransportURI], peerHasPunched: Bool) -> Opening {
        guard settings.punchTTL > 0, purpose != .own(connectToken: nil), Linker.mayBeBehindNAT(uris) else {
            return .direct
        }
        return peerHasPunched ? .punchThenSend : .punchThenWait
    }

    /// Whether a node with these URIs may be behind a NAT: they name more than one host other than loopback.
    /// A node behind a NAT lists the public URI peers observed it at (or its gateway added) besides its own
    /// address; a public node bound to one address lists that one only. Only such an observed public URI leads
    /// to the peer's NAT, so a peer judged public by this is never sent to through its NAT. A multi-homed
    /// public node is judged NATed: it costs a short wait, nothing else.
    public static func mayBeBehindNAT(_ uris: [TransportURI]) -> Bool {
        var hosts: Set<String> = []
        for uri in uris {
            guard let host = uri.hostAndPort?.host.lowercased(), !isLoopback(host) else { continue }
            hosts.insert(host)
            if hosts.count > 1 { return true }
        }
        return false
    }

    private static func isLoopback(_ host: String) -> Bool {
        host.hasPrefix("127.") || host == "::1" || host == "localhost" || host.hasPrefix("::ffff:127.")
    }

    /// The edge for the current try is open (or could not be opened). `canPunch`: the edge is a
    /// `HolePunchingEdge`; an attempt neither punches nor waits on other edges. `uri`: the URI the edge was
    /// opened to; a result for another URI than the current one (the attempt started over meanwhile) is ignored.
    public mutating func edgeOpened(token: UInt64, result: Result<EdgeID, EdgeError>, canPunch: Bool = false,
                                    uri: TransportURI? = nil) -> [Action] {
        if let uri, let attempt = attempts[token], attempt.uris[attempt.uriIndex] != uri || attempt.edge != nil,
           attempt.racingOpens.contains(uri) {
            return racingEdgeOpened(token: token, uri: uri, result: result)
        }
        guard var attempt = attempts[token], attempt.edge == nil || uri == nil else { return [] }
        if let uri, attempt.uris[attempt.uriIndex] != uri { return [] }
        if let uri { attempt.racingOpens.remove(uri) }
        switch result {
        case .success(let edge):
            attempt.edge = edge
            attempt.edgesTried.insert(edge)
            attempts[token] = attempt
            guard canPunch, attempt.opening != .direct else { return sendRequest(token) }
            let punch = Action.punch(token: token, edge: edge, ttl: settings.punchTTL)
            guard attempt.opening == .punchThenWait, settings.punchHold > .zero else {
                return [punch] + sendRequest(token)
            }
            attempts[token]?.isHolding = true
            return [punch, .armTimer(token: token, delay: settings.punchHold)]
        case .failure(let error):
            attempt.lastFailure = error.description
            attempt.deadURIs.insert(attempt.uris[attempt.uriIndex])
            attempts[token] = attempt
            return nextURI(token)
        }
    }

    /// The edge of an earlier try in a race opened after the attempt moved on: it gets its request (no timer:
    /// the current try's runs), and a reply on it counts like any other.
    private mutating func racingEdgeOpened(token: UInt64, uri: TransportURI, result: Result<EdgeID, EdgeError>) -> [Action] {
        attempts[token]?.racingOpens.remove(uri)
        switch result {
        case .success(let edge):
            attempts[token]?.edgesTried.insert(edge)
            attempts[token]?.hasSentRequest = true
            return [.sendRequest(token: token, edge: edge, uri: uri)]
        case .failure(let error):
            attempts[token]?.deadURIs.insert(uri)
            attempts[token]?.lastFailure = error.description
            return []
        }
    }

    /// The peer has punched toward us: its Connect-To-Me reply arrived (a recipient punches as it replies),
    /// carrying its current URIs, or its link request got through to us (`uris` empty: keep ours). The attempt
    /// stops waiting and sends at once, starting over on the peer's first URI if it is elsewhere.
    /// `fallbackURIs`: those of `uris` that may start beside the direct tries (as for `start`).
    public mutating func peerPunched(token: UInt64, uris: [TransportURI], fallbackURIs: [TransportURI] = [],
                                     relayAtOnce: Bool = false) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        if attempt.opening == .punchThenWait { attempt.opening = .punchThenSend }
        attempts[token] = attempt
        if let first = uris.first, attempt.uris[attempt.uriIndex] != first {
            return startOver(token, on: uris) + offerFallback(fallbackURIs, token, relayAtOnce: relayAtOnce)
        }
        if !uris.isEmpty { adopt(uris, token) }
        // Held: send now. Still opening its edge: `edgeOpened` sends at once.
        return (attempt.isHolding ? sendRequest(token) : []) + offerFallback(fallbackURIs, token, relayAtOnce: relayAtOnce)
    }

    /// Sends the attempt's request on `edge` too (at `uri`), the edge the peer's own request just came by: it
    /// carries traffic between us now, which the edges the attempt tried may not (a peer behind a NAT that
    /// maps per peer came from another port than the one we send to; a relayed edge, shared by both ends'
    /// attempts, lost the request we sent while the two ends' handshakes on it crossed).
    public mutating func requestAlso(token: UInt64, on edge: EdgeID, uri: TransportURI) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        attempt.edgesTried.insert(edge)
        attempt.hasSentRequest = true
        attempts[token] = attempt
        return [.sendRequest(token: token, edge: edge, uri: uri)]
    }

    /// The peer is about to link to us: its Connect-To-Me arrived, with its current URIs, while this attempt to
    /// it was under way, and it links to those we are about to reply with. Unless the attempt is on the peer's
    /// first URI already, it starts over there, punching and (unless the peer punched already) waiting for it.
    public mutating func peerWillLink(token: UInt64, uris: [TransportURI], fallbackURIs: [TransportURI] = [],
                                      relayAtOnce: Bool = false) -> [Action] {
        guard var attempt = attempts[token], let first = uris.first else { return [] }
        guard attempt.uris[attempt.uriIndex] != first else {
            adopt(uris, token)
            return offerFallback(fallbackURIs, token, relayAtOnce: relayAtOnce)
        }
        if attempt.opening != .punchThenSend {
            attempt.opening = opening(purpose: .forPeer, uris: uris, peerHasPunched: false)
            attempts[token] = attempt
        }
        return startOver(token, on: uris) + offerFallback(fallbackURIs, token, relayAtOnce: relayAtOnce)
    }

    /// The attempt goes on with `uris`, whose first is the URI it is trying now.
    private mutating func adopt(_ uris: [TransportURI], _ token: UInt64) {
        attempts[token]?.uris = uris
        attempts[token]?.uriIndex = 0
    }

    /// Tries `uris` from the first, as a fresh attempt would (a request already sent still counts for
    /// `hasSentRequest`). A timer armed for the old edge finds no edge and does nothing.
    private mutating func startOver(_ token: UInt64, on uris: [TransportURI]) -> [Action] {
        guard var attempt = attempts[token], !uris.isEmpty else { return [] }
        attempt.uris = uris
        attempt.uriIndex = 0
        attempt.round = 0
        attempt.edge = nil
        attempt.isHolding = false
        attempts[token] = attempt
        return open(token)
    }

    /// Sends the current URI's next request and arms the reply timer.
    private mutating func sendRequest(_ token: UInt64) -> [Action] {
        guard var attempt = attempts[token], let edge = attempt.edge else { return [] }
        attempt.isHolding = false
        attempt.hasSentRequest = true
        attempts[token] = attempt
        let request = Action.sendRequest(token: token, edge: edge, uri: attempt.uris[attempt.uriIndex])
        // A racing try's timer runs from its start.
        guard !attempt.isRacing else { return [request] }
        let backoff = attempt.round == 0 ? .zero : settings.retryBackoff * (1 << min(attempt.round - 1, 6))
        return [request, .armTimer(token: token, delay: settings.replyTimeout + backoff)]
    }

    /// The armed timer fired: a held first request goes out now (the peer did not link first); a request
    /// without reply moves the attempt on to the next URI.
    /// `edgeAnswered`: the peer has answered on the current try's edge already (its secure handshake
    /// completed), so the path works and a racing try stops racing: it waits for its reply like any other.
    public mutating func timerFired(token: UInt64, edgeAnswered: Bool = false) -> [Action] {
        guard let attempt = attempts[token] else { return [] }
        if attempt.isRacing, attempt.edge != nil, edgeAnswered {
            // Racing on would put a second request to the same peer on another transport, and the connection
            // might settle there.
            attempts[token]?.isRacing = false
            return [.armTimer(token: token, delay: settings.replyTimeout)]
        }
        if attempt.isRacing {
            // The race moves on; the try stays in it (its edge, or the edge still opening, gets the reply).
            if attempt.edge == nil { attempts[token]?.racingOpens.insert(attempt.uris[attempt.uriIndex]) }
            attempts[token]?.lastFailure = "no reply from \(attempt.uris[attempt.uriIndex])"
            return nextURI(token)
        }
        // No edge: a timer left from a try whose edge closed, or armed before the attempt started over.
        guard attempt.edge != nil else { return [] }
        if attempt.isHolding {
            // The peer did not link first: go ahead, and wait no more on later URIs.
            attempts[token]?.opening = .punchThenSend
            return sendRequest(token)
        }
        attempts[token]?.lastFailure = "no reply from \(attempt.uris[attempt.uriIndex]) after \(attempt.round + 1) tries"
        return nextURI(token)
    }

    /// A reply arrived on `edge`. A reply to a yielded attempt completes it (the peer holds the connection on
    /// `edge` now); replies for other unknown tokens (finished or failed attempts) are ignored.
    public mutating func replyReceived(_ reply: LinkReply, on edge: EdgeID) -> [Action] {
        if attempts[reply.token] == nil, let index = yielded.firstIndex(where: { $0.token == reply.token }) {
            let attempt = yielded[index].attempt
            guard attempt.edgesTried.contains(edge), attempt.target == reply.responder.address else { return [] }
            yielded.remove(at: index)
            return [.established(attempt, reply: reply, edge: edge)]
        }
        guard let attempt = attempts[reply.token], attempt.edgesTried.contains(edge) else { return [] }
        if let target = attempt.target, target != reply.responder.address {
            attempts[reply.token]?.lastFailure = "\(attempt.uris[attempt.uriIndex]) is \(reply.responder.address.short), not \(target.short)"
            // Only the current try's URI is known to be wrong; a stray reply on an older edge is ignored.
            guard attempt.edge == edge else { return [] }
            attempts[reply.token]?.deadURIs.insert(attempt.uris[attempt.uriIndex])
            return nextURI(reply.token)
        }
        attempts[reply.token] = nil
        return [.established(attempt, reply: reply, edge: edge)]
    }

    /// A link error arrived. `raceLost` ends the attempt (the peer's own attempt wins); others move on.
    public mutating func errorReceived(_ error: LinkError, on edge: EdgeID) -> [Action] {
        guard let attempt = attempts[error.token], attempt.edgesTried.contains(edge) else { return [] }
        switch error.code {
        case .selfLink where attempt.target != nil:
            // We expected another node and reached ourselves (a peer's URI that leads back here): try the rest.
            guard attempt.edge == edge else { return [] }
            attempts[error.token]?.lastFailure = "\(attempt.uris[attempt.uriIndex]) leads back to this node"
            attempts[error.token]?.deadURIs.insert(attempt.uris[attempt.uriIndex])
            return nextURI(error.token)
        case .raceLost, .selfLink, .refused, .tableFull:
            attempts[error.token] = nil
            var ended = attempt
            ended.refusal = error.code
            return [.failed(ended, reason: "\(error.code): \(error.message)")]
        case .wrongTarget:
            guard attempt.edge == edge else { return [] }
            attempts[error.token]?.lastFailure = "\(attempt.uris[attempt.uriIndex]): \(error.message)"
            attempts[error.token]?.deadURIs.insert(attempt.uris[attempt.uriIndex])
            return nextURI(error.token)
        }
    }

    /// The edge an attempt used closed: move on to the next URI.
    public mutating func edgeClosed(_ edge: EdgeID) -> [Action] {
        var actions: [Action] = []
        for token in attempts.keys.sorted() {
            guard let attempt = attempts[token], attempt.edgesTried.contains(edge) else { continue }
            attempts[token]?.edgesTried.remove(edge)
            guard attempt.edge == edge else { continue }
            attempts[token]?.lastFailure = "the edge closed"
            attempts[token]?.deadURIs.insert(attempt.uris[attempt.uriIndex])
            actions += nextURI(token)
        }
        return actions
    }

    /// Drops an attempt without reporting (another path produced the connection).
    @discardableResult
    public mutating func cancel(token: UInt64) -> Attempt? { attempts.removeValue(forKey: token) }

    /// Drops an attempt because the peer's own request on `edge` made the connection (simultaneous links).
    /// Requests the attempt sent on other edges may still reach the peer, which then moves its connection
    /// there and replies: such a reply completes the attempt after all (`replyReceived`). The node must
    /// withdraw the requests it can (an edge whose secure handshake still holds one: close it).
    @discardableResult
    public mutating func yield(token: UInt64, to edge: EdgeID) -> Attempt? {
        guard var attempt = attempts.removeValue(forKey: token) else { return nil }
        attempt.edgesTried.remove(edge)
        if attempt.hasSentRequest, !attempt.edgesTried.isEmpty {
            yielded.append((token, attempt))
            if yielded.count > Linker.maximumYielded { yielded.removeFirst() }
        }
        return attempt
    }

    /// Whether yielded attempt `token` is kept for a reply to a request it left on another edge (`yield`).
    public func awaitsReplyAfterYielding(_ token: UInt64) -> Bool { yielded.contains { $0.token == token } }

    /// A yielded attempt no longer has a request out on `edge` (the node closed it).
    public mutating func withdraw(_ edge: EdgeID, fromYielded token: UInt64) {
        guard let index = yielded.firstIndex(where: { $0.token == token }) else { return }
        yielded[index].attempt.edgesTried.remove(edge)
        if yielded[index].attempt.edgesTried.isEmpty { yielded.remove(at: index) }
    }

    /// The next URI to try: the next live one in this round, else the first live one of the next round.
    private mutating func nextURI(_ token: UInt64) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        attempt.edge = nil
        attempt.isHolding = false
        attempt.isRacing = false
        var index = attempt.uriIndex + 1
        var round = attempt.round
        while true {
            if index >= attempt.uris.count {
                index = 0
                round += 1
                guard round < settings.attemptsPerURI else { break }
            }
            if !attempt.deadURIs.contains(attempt.uris[index]) {
                attempt.uriIndex = index
                attempt.round = round
                attempts[token] = attempt
                return open(token)
            }
            index += 1
            if attempt.deadURIs.count >= Set(attempt.uris).count { break }
        }
        attempts[token] = nil
        return [.failed(attempt, reason: attempt.lastFailure)]
    }
}
