/// The outbound side of the link handshake, as a state machine (Brunet's Linker).
///
/// One attempt tries every URI of a peer in turn, each up to `attemptsPerURI` times with a reply timeout and a
/// doubling backoff, until a `LinkReply` arrives or every URI failed. The node feeds it events (edge opened,
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
        var triesOnURI = 0
        /// The edge the current try uses, once open.
        public var edge: EdgeID?
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
    public func isUsing(_ edge: EdgeID) -> Bool { attempts.values.contains { $0.edge == edge } }

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
            attempt.triesOnURI += 1
            attempts[token] = attempt
            return [.sendRequest(token: token, edge: edge, uri: attempt.uris[attempt.uriIndex]),
                    .armTimer(token: token, delay: settings.replyTimeout)]
        case .failure(let error):
            attempt.lastFailure = error.description
            attempts[token] = attempt
            return nextURI(token)
        }
    }

    /// No reply within the timeout: retry this URI after a backoff, or move on.
    public mutating func timerFired(token: UInt64) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        attempt.lastFailure = "no reply from \(attempt.uris[attempt.uriIndex]) after \(attempt.triesOnURI) tries"
        attempts[token] = attempt
        guard let edge = attempt.edge, attempt.triesOnURI < settings.attemptsPerURI else { return nextURI(token) }
        attempt.triesOnURI += 1
        attempts[token] = attempt
        let backoff = settings.retryBackoff * (1 << min(attempt.triesOnURI - 2, 6))
        return [.sendRequest(token: token, edge: edge, uri: attempt.uris[attempt.uriIndex]),
                .armTimer(token: token, delay: settings.replyTimeout + backoff)]
    }

    /// A reply arrived on `edge`. Replies for unknown tokens (finished or cancelled attempts) are ignored.
    public mutating func replyReceived(_ reply: LinkReply, on edge: EdgeID) -> [Action] {
        guard let attempt = attempts[reply.token], attempt.edge == edge else { return [] }
        if let target = attempt.target, target != reply.responder.address {
            attempts[reply.token]?.lastFailure = "\(attempt.uris[attempt.uriIndex]) is \(reply.responder.address.short), not \(target.short)"
            return nextURI(reply.token)
        }
        attempts[reply.token] = nil
        return [.established(attempt, reply: reply, edge: edge)]
    }

    /// A link error arrived. `raceLost` ends the attempt (the peer's own attempt wins); others move on.
    public mutating func errorReceived(_ error: LinkError, on edge: EdgeID) -> [Action] {
        guard let attempt = attempts[error.token], attempt.edge == edge else { return [] }
        switch error.code {
        case .raceLost, .selfLink, .refused, .tableFull:
            attempts[error.token] = nil
            return [.failed(attempt, reason: "\(error.code): \(error.message)")]
        case .wrongTarget:
            attempts[error.token]?.lastFailure = "\(attempt.uris[attempt.uriIndex]): \(error.message)"
            return nextURI(error.token)
        }
    }

    /// The edge an attempt used closed: move on to the next URI.
    public mutating func edgeClosed(_ edge: EdgeID) -> [Action] {
        var actions: [Action] = []
        for token in attempts.keys.sorted() where attempts[token]?.edge == edge {
            attempts[token]?.lastFailure = "the edge closed"
            actions += nextURI(token)
        }
        return actions
    }

    /// Drops an attempt without reporting (another path produced the connection).
    @discardableResult
    public mutating func cancel(token: UInt64) -> Attempt? { attempts.removeValue(forKey: token) }

    private mutating func nextURI(_ token: UInt64) -> [Action] {
        guard var attempt = attempts[token] else { return [] }
        attempt.uriIndex += 1
        attempt.triesOnURI = 0
        attempt.edge = nil
        guard attempt.uriIndex < attempt.uris.count else {
            attempts[token] = nil
            return [.failed(attempt, reason: attempt.lastFailure)]
        }
        attempts[token] = attempt
        return [.openEdge(token: token, uri: attempt.uris[attempt.uriIndex])]
    }
}
