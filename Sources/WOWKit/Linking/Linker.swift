/// The outbound side of the link handshake, as a state machine (Brunet's Linker).
///
/// One attempt tries the URIs of a peer in rounds: each URI once per round, in order, each try waiting a reply
/// timeout (plus a backoff that doubles from the second round on), for up to `attemptsPerURI` rounds, until a
/// `LinkReply` arrives on any edge it tried or every URI failed. Rounds rather than retrying one URI first mean
/// a later URI (a relay, listed last) is tried after one timeout per earlier URI, not after all their retries;
/// a late reply to an earlier try still counts. The node feeds it events (edge opened,
/// reply, error, timer) and carries out the returned actions. It holds no edges, sockets or timers itself.
public struct Linker {
    /// Why an attempt was made: for one of our own overlords, or because a peer's CTM asked us to link.
    public enum Purpose: Equatable, Sendable {
        /// Our own request; `connectToken` names the pending CTM it serves, if any.
        case own(connectToken: UInt64?)
        /// A peer's Connect-To-Me: the type is the peer's, not ours.
        case forPeer
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
        /// Every edge a request went out on: a reply on any of them completes the attempt.
        public var edgesTried: Set<EdgeID> = []
        /// The last reason a try failed, reported if the whole attempt fails.
        var lastFailure = "no URI to try"
    }

    /// What the node must do.
    public enum Action: Equatable, Sendable {
        /// Open (or reuse) an edge to `uri` and report back with `edgeOpened`.
        case openEdge(token: UInt64, uri: TransportURI)
        /// Send a `LinkRequest` for `token` on `edge`, to `uri`.
        case sendRequest(token: UInt64, edge: EdgeID, uri: TransportURI)
        /// Call `timerFired(token:)` after `delay`.
        case armTimer(token: UInt64, delay: Duration)
        /// The handshake succeeded: make the connection from the reply.
        case established(Attempt, reply: LinkReply, edge: EdgeID)
        /// Every URI failed.
        case failed(Attempt, reason: String)
    }

    public let settings: NodeConfig.Linking
    public private(set) var attempts: [UInt64: Attempt] = [:]

    public init(settings: NodeConfig.Linking) { self.settings = settings }

    /// The pending attempt to `address`, if any.
    public func attempt(to address: Address) -> Attempt? {
        attempts.values.first { $0.target == address }
    }

    public func attempt(token: UInt64) -> Attempt? { attempts[token] }

    /// Whether any attempt is using `edge`.
    public func isUsing(_ edge: EdgeID) -> Bool { attempts.values.contains { $0.edge == edge || $0.edgesTried.contains(edge) } }

    public mutating func start(token: UInt64, type: ConnectionType, target: Address?, uris: [TransportURI],
                               purpose: Purpose) -> [Action] {
        let attempt = Attempt(token: token, type: type, target: target, uris: uris, purpose: purpose)
        guard let first = uris.first else { return [.failed(attempt, reason: "the peer has no URI")] }
        attempts[token] = attempt
        return [.openEdge(token: token, uri: first)]
    }

    /// The edge for the current try is open (or could not be opened).
    public mutating func edgeOpened(token: UInt64, result: Result<EdgeID, EdgeError>) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        switch result {
        case .success(let edge):
            attempt.edge = edge
            attempt.edgesTried.insert(edge)
            attempts[token] = attempt
            let backoff = attempt.round == 0 ? .zero : settings.retryBackoff * (1 << min(attempt.round - 1, 6))
            return [.sendRequest(token: token, edge: edge, uri: attempt.uris[attempt.uriIndex]),
                    .armTimer(token: token, delay: settings.replyTimeout + backoff)]
        case .failure(let error):
            attempt.lastFailure = error.description
            attempt.deadURIs.insert(attempt.uris[attempt.uriIndex])
            attempts[token] = attempt
            return nextURI(token)
        }
    }

    /// No reply within the timeout: try the next URI.
    public mutating func timerFired(token: UInt64) -> [Action] {
        // A timer left from a try whose edge closed, while the next edge is opening: that try is over already.
        guard let attempt = attempts[token], attempt.edge != nil else { return [] }
        attempts[token]?.lastFailure = "no reply from \(attempt.uris[attempt.uriIndex]) after \(attempt.round + 1) tries"
        return nextURI(token)
    }

    /// A reply arrived on `edge`. Replies for unknown tokens (finished or cancelled attempts) are ignored.
    public mutating func replyReceived(_ reply: LinkReply, on edge: EdgeID) -> [Action] {
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
            return [.failed(attempt, reason: "\(error.code): \(error.message)")]
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

    /// Adds URIs of `address` learned since its attempt started (a Connect-To-Me reply carries the peer's
    /// own, complete info) to the end of the attempt's list.
    public mutating func learnURIs(_ uris: [TransportURI], for address: Address) {
        guard let token = attempts.first(where: { $0.value.target == address })?.key else { return }
        for uri in uris where !(attempts[token]?.uris.contains(uri) ?? true) { attempts[token]?.uris.append(uri) }
    }

    /// Drops an attempt without reporting (another path produced the connection).
    @discardableResult
    public mutating func cancel(token: UInt64) -> Attempt? { attempts.removeValue(forKey: token) }

    /// The next URI to try: the next live one in this round, else the first live one of the next round.
    private mutating func nextURI(_ token: UInt64) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        attempt.edge = nil
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
                return [.openEdge(token: token, uri: attempt.uris[index])]
            }
            index += 1
            if attempt.deadURIs.count >= Set(attempt.uris).count { break }
        }
        attempts[token] = nil
        return [.failed(attempt, reason: attempt.lastFailure)]
    }
}
