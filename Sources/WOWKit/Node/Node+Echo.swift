import NIOCore

/// What one overlay echo (`wow ping`) found out.
public struct EchoOutcome: Sendable, Equatable {
    public var roundTrip: Duration
    /// Overlay hops the request took, and the reply.
    public var hopsThere: Int
    public var hopsBack: Int
    /// How the request left this node, for people: `direct udp 198.18.12.2:4000`, `relayed via alpha`,
    /// `routed via gamma`.
    public var path: String
    /// Whether the request went over a direct (not relayed, not routed) connection to the destination.
    public var isDirect: Bool
}

/// Why an overlay echo got no reply.
public enum EchoFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case timedOut(after: Duration)
    /// A node on the way could not deliver the request (`reporter` gave up).
    case unreachable(RoutingError.Code, reporter: Address)
    /// `PendingEchoes.maximumWaiting` echoes wait already.
    case tooMany
    case notRunning

    public var description: String {
        switch self {
        case .timedOut(let after): return "no reply within \(after.seconds) s"
        case .unreachable(let code, let reporter): return "unreachable: \(code) (reported by \(reporter.short))"
        case .tooMany: return "\(PendingEchoes.maximumWaiting) echoes wait for replies already"
        case .notRunning: return "the node is not running"
        }
    }
}

/// The echoes a node is waiting for, by token.
struct PendingEchoes {
    struct Echo {
        var destination: Address
        var sentAt: Timestamp
        var path: String
        var isDirect: Bool
        var completion: (Result<EchoOutcome, EchoFailure>) -> Void
    }

    var waiting: [UInt64: Echo] = [:]
    /// Replies this node sent in the current second: at most `repliesPerSecond`, so no member can turn it
    /// into a packet source aimed at a third node (requests carry a source only the last hop vouches for).
    var replyWindow: (second: Int64, count: Int) = (0, 0)
    static let repliesPerSecond = 200
    /// Requests waiting at once; more fail at once rather than grow without bound.
    static let maximumWaiting = 4096
}

extension Node {
    /// Sends an overlay echo request to `destination` and calls `completion` (on the node's executor) with the
    /// reply's round trip, hop counts and the path the request took, or why none came within `timeout`.
    /// Counts as traffic with the destination, so a shortcut strategy links to it as it would for data.
    public func echo(_ destination: Address, sequence: UInt32, timeout: Duration,
                     completion: @escaping (Result<EchoOutcome, EchoFailure>) -> Void) {
        guard isRunning else { return completion(.failure(.notRunning)) }
        guard echoes.waiting.count < PendingEchoes.maximumWaiting else {
            return completion(.failure(.tooMany))
        }
        var token = random.next()
        while echoes.waiting[token] != nil { token = random.next() }
        let (path, isDirect) = pathDescription(to: destination)
        echoes.waiting[token] = PendingEchoes.Echo(destination: destination, sentAt: scheduler.now, path: path,
                                                   isDirect: isDirect, completion: completion)
        arm(.echo(token: token), after: timeout)
        noteTraffic(with: destination, bytes: Echo.byteCount, isSent: true)
        let header = RoutedHeader(mode: .exact, payloadType: .echoRequest, source: address, destination: destination)
        route(RoutedPacket(header: header, payload: Echo(token: token, sequence: sequence).encoded()), previous: nil)
    }

    /// How a packet to `destination` leaves this node now, and whether that is a direct connection.
    func pathDescription(to destination: Address) -> (path: String, isDirect: Bool) {
        if destination == address { return ("this node", true) }
        if let connection = table.connection(to: destination) {
            if let forwarder = forwarder(of: connection) { return (relayedPath(via: forwarder), false) }
            return (Node.directPath(of: connection), true)
        }
        let header = RoutedHeader(mode: .exact, payloadType: .echoRequest, source: address, destination: destination)
        switch Router.decide(header, at: address, table: table, previous: nil, isRingMember: isRingMember) {
        case .forward(let next): return ("routed via \(displayName(of: next))", false)
        case .deliver: return ("this node", true)
        case .fail(let code): return ("no route (\(code))", false)
        }
    }

    func echoTimedOut(_ token: UInt64) {
        guard let echo = echoes.waiting.removeValue(forKey: token) else { return }
        echo.completion(.failure(.timedOut(after: scheduler.now - echo.sentAt)))
    }

    /// An echo request or reply reached this node.
    func receiveEcho(_ payload: ByteBuffer, header: RoutedHeader) throws(WireError) {
        let echo = try Echo.decode(payload)
        noteTraffic(with: header.source, bytes: Echo.byteCount, isSent: false)
        if header.payloadType == .echoRequest {
            let second = scheduler.now.nanoseconds / 1_000_000_000
            if echoes.replyWindow.second != second { echoes.replyWindow = (second, 0) }
            guard echoes.replyWindow.count < PendingEchoes.repliesPerSecond else { return stats.drop(.echoReplyLimit) }
            echoes.replyWindow.count += 1
            noteTraffic(with: header.source, bytes: Echo.byteCount, isSent: true)
            let back = RoutedHeader(mode: .exact, payloadType: .echoReply, source: address, destination: header.source)
            let reply = Echo(token: echo.token, sequence: echo.sequence, requestHops: header.hops)
            return route(RoutedPacket(header: back, payload: reply.encoded()), previous: nil)
        }
        guard let waiting = echoes.waiting[echo.token], waiting.destination == header.source else {
            return stats.drop(.echoUnexpected)
        }
        echoes.waiting[echo.token] = nil
        timers.removeValue(forKey: .echo(token: echo.token))?.cancel()
        waiting.completion(.success(EchoOutcome(roundTrip: scheduler.now - waiting.sentAt, hopsThere: Int(echo.requestHops),
                                                hopsBack: Int(header.hops), path: waiting.path, isDirect: waiting.isDirect)))
    }

    /// A request this node sent could not be delivered: every echo waiting on that destination fails.
    func echoUndeliverable(_ error: RoutingError) {
        let failed = echoes.waiting.filter { $0.value.destination == error.destination }
        for (token, echo) in failed {
            echoes.waiting[token] = nil
            timers.removeValue(forKey: .echo(token: token))?.cancel()
            echo.completion(.failure(.unreachable(error.code, reporter: error.reporter)))
        }
    }
}
