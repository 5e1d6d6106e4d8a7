import NIOCore

/// Who the node's peers are, for people: the names their certificates give them, and what a name, virtual IP
/// or address someone typed stands for.
extension Node {
    /// The certificate `peer` proved to this node: on the edge of its connection, or in an end-to-end session.
    public func certificate(of peer: Address) -> MembershipCertificate? {
        if peer == address { return edgeSecurity?.credentials.certificate }
        if let connection = table.connection(to: peer), let certificate = securedEdge(connection.edgeID)?.peerCertificate {
            return certificate
        }
        return endToEnd?.certificate(of: peer)
    }

    /// `peer`'s certificate name if the node knows it, else its short address.
    public func displayName(of peer: Address) -> String {
        certificate(of: peer)?.name ?? peer.short
    }

    /// What `target` stands for: a ring address (40 hex digits), a virtual IP (secured networks: the ring
    /// address follows from it), or a member's certificate name. Calls `completion` on the node's executor.
    public func resolve(_ target: String, completion: @escaping (Result<ResolvedTarget, NameLookupFailure>) -> Void) {
        let text = target.trimmingCharacters(in: .whitespaces)
        if text.count == Address.byteCount * 2, let peer = Address(hex: text) {
            let certificate = certificate(of: peer)
            return completion(.success(ResolvedTarget(address: peer, name: certificate?.name,
                                                      virtualIPs: certificate?.virtualIPs ?? [])))
        }
        if let ip = VirtualIP(text) {
            guard let network = edgeSecurity?.credentials.authority.network else {
                return completion(.failure(.virtualIPWithoutSecurity(text)))
            }
            // Its holder sits at the address of its certificate's first IP: the name service knows which. With
            // no answer, where a first IP sits (a ping there then says whether anyone answers).
            return lookUpName(ip.description) { result in
                if case .success(let record?) = result {
                    return completion(.success(ResolvedTarget(address: record.address, name: record.certificate.name,
                                                              virtualIPs: record.certificate.virtualIPs)))
                }
                completion(.success(ResolvedTarget(address: Address.forVirtualIP(ip, network: network), name: nil,
                                                   virtualIPs: [ip])))
            }
        }
        guard (1...MembershipCertificate.maximumNameLength).contains(text.utf8.count) else {
            return completion(.failure(.notATarget(text)))
        }
        if let known = knownCertificate(named: text) {
            return completion(.success(ResolvedTarget(address: known.entitledAddress, name: known.name,
                                                      virtualIPs: known.virtualIPs)))
        }
        guard edgeSecurity != nil else { return completion(.failure(.unknownName(text))) }
        lookUpName(text) { result in
            switch result {
            case .success(let record?):
                completion(.success(ResolvedTarget(address: record.address, name: record.certificate.name,
                                                   virtualIPs: record.certificate.virtualIPs)))
            case .success(nil): completion(.failure(.unknownName(text)))
            case .failure: completion(.failure(.noAnswer(text)))
            }
        }
    }

    /// A certificate with `name` this node holds: its own, a connected peer's or an end-to-end peer's.
    func knownCertificate(named name: String) -> MembershipCertificate? {
        let wanted = name.lowercased()
        return knownCertificate { $0.name.lowercased() == wanted }
    }

    /// A certificate this node holds that names `ip` among its virtual IPs.
    public func knownCertificate(holding ip: VirtualIP) -> MembershipCertificate? {
        knownCertificate { $0.virtualIPs.contains(ip) }
    }

    private func knownCertificate(where matches: (MembershipCertificate) -> Bool) -> MembershipCertificate? {
        if let own = edgeSecurity?.credentials.certificate, matches(own) { return own }
        for connection in table.connections {
            if let certificate = securedEdge(connection.edgeID)?.peerCertificate, matches(certificate) { return certificate }
        }
        return endToEnd?.certificate(where: matches)
    }
}

// MARK: - The name service

extension Node {
    /// How soon a node that could not publish its record yet (not in a ring) tries again.
    static let namePublishRetry: Duration = .milliseconds(500)

    /// Looks `name` up in the name service: the record of the member with that name, or with that virtual IP
    /// when `name` is one's text (its certificate gives its address and virtual IPs), nil when no member holds
    /// it. A secured node only; it answers its own name and its peers' from what it holds. Calls `completion`
    /// on the node's executor.
    public func lookUpName(_ name: String, completion: @escaping NameService.Completion) {
        guard isRunning, let credentials = edgeSecurity?.credentials else {
            return completion(.failure(NameLookupTimeout(name: name)))
        }
        let known: MembershipCertificate?
        if let ip = VirtualIP(name) { known = knownCertificate(holding: ip) } else { known = knownCertificate(named: name) }
        if let known {
            // Our own or a peer's: a record of our own making is as good (its certificate was checked).
            return completion(.success(NameRecord(certificate: known, publishedAt: wallClock(), signature: [])))
        }
        // Kept here for others (this node is the name's storer or holds a replica).
        if let kept = names.record(forKey: name, unixTime: wallClock()) { return completion(.success(kept)) }
        switch names.lookUp(name, token: random.next(), now: scheduler.now, completion: completion) {
        case .answered(let record): completion(.success(record))
        case .ask(let token): askForName(name, token: token, try: 1, network: credentials.authority.network)
        case .joined: break
        case .tooMany: completion(.failure(NameLookupTimeout(name: name)))
        }
    }

    private func askForName(_ name: String, token: UInt64, try number: Int, network: NetworkID) {
        arm(.nameLookup(token: token), after: names.settings.lookupTimeout)
        let key = NameRecord.ringKey(forKey: name, network: network)
        for mode in NameService.modes(forTry: number) { send(.get(token: token, name: name.lowercased()), to: key, mode: mode) }
    }

    func nameLookupTimedOut(_ token: UInt64) {
        guard let name = names.name(ofLookup: token), let network = edgeSecurity?.credentials.authority.network else { return }
        let (again, failed) = names.timedOut(token)
        if let again { askForName(name, token: token, try: again, network: network) }
        for completion in failed { completion(.failure(NameLookupTimeout(name: name))) }
    }

    /// Publishes this node's record at the ring key of its name and of each of its virtual IPs beyond the first
    /// (once it is in a ring), then again every `refresh`.
    func publishName() {
        guard let credentials = edgeSecurity?.credentials else { return }
        guard table.hasStructured else { return arm(.namePublish, after: Node.namePublishRetry) }
        let record = NameRecord(credentials: credentials, at: wallClock())
        for key in record.keys {
            send(.put(record, isReplica: false), to: NameRecord.ringKey(forKey: key, network: credentials.authority.network),
                 mode: .nearest)
        }
        let refresh = names.settings.refresh
        // Up to a tenth earlier, so members that joined together do not publish together for ever.
        let jitter = Duration.nanoseconds(Int64(random.next() % UInt64(max(1, refresh.nanoseconds / 10))))
        arm(.namePublish, after: refresh - jitter)
    }

    /// Records a peer is nearer to than this node go to it, as replicas (it keeps them and passes them on if it
    /// knows a peer nearer still, but does not copy them to its neighbours: a cascade of copies cost 13 B/s per
    /// connection at 1,000 idle nodes). Runs after the table changed.
    func handOverNames() {
        guard let network = edgeSecurity?.credentials.authority.network, !names.stored.isEmpty else { return }
        let handovers = names.handovers(from: address, network: network, neighbours: ringNeighbours()) { [table] key in
            table.nearestStructured(to: key)?.address
        }
        for (record, peer) in handovers { send(.put(record, isReplica: true), to: peer, mode: .exact) }
    }

    /// The nearest structured peers left, then right (once, in a ring of two): in a fixed order, so a simulated
    /// run repeats.
    private func ringNeighbours() -> [Address] {
        var neighbours: [Address] = []
        for side in [table.nearestStructured(leftOf: address), table.nearestStructured(rightOf: address)] {
            if let peer = side?.address, !neighbours.contains(peer) { neighbours.append(peer) }
        }
        return neighbours
    }

    /// Whether no structured peer is nearer than this node to one of `record`'s ring keys.
    private func isNearest(toAKeyOf record: NameRecord, network: NetworkID) -> Bool {
        record.keys.contains { name in
            let key = NameRecord.ringKey(forKey: name, network: network)
            guard let peer = table.nearestStructured(to: key)?.address else { return true }
            return key.distance(to: address) < key.distance(to: peer)
        }
    }

    private func send(_ message: NameMessage, to destination: Address, mode: DeliveryMode) {
        let header = RoutedHeader(mode: mode, payloadType: message.payloadType, source: address, destination: destination)
        route(RoutedPacket(header: header, payload: message.encoded()), previous: nil)
    }

    /// A name service message reached this node.
    func receiveName(_ payload: ByteBuffer, header: RoutedHeader) throws(WireError) {
        guard let credentials = edgeSecurity?.credentials else { return stats.drop(.namesWithoutSecurity) }
        let unixTime = wallClock()
        switch try NameMessage.decode(payload, type: header.payloadType) {
        case .put(let record, let isReplica):
            switch names.keep(record, credentials: credentials, unixTime: unixTime) {
            case .new where !isReplica:
                for neighbour in ringNeighbours() where neighbour != record.address {
                    send(.put(record, isReplica: true), to: neighbour, mode: .exact)
                }
            case .new where isNearest(toAKeyOf: record, network: credentials.authority.network):
                // A handover made us the node nearest a key (from one that was nearest while the ring filled in,
                // whose neighbours hold the replicas, not ours): ours get them.
                handOverNames()
            case .new, .known: break
            case .refused(let refusal): stats.drop(.nameRefused(refusal))
            case .full: stats.drop(.nameStoreFull)
            }
        case .get(let token, let name):
            var record = names.record(forKey: name, unixTime: unixTime)
            // Its own name or IP (the first IP's key is the node's own address: asked there, it answers).
            if record == nil, NameRecord.certificate(credentials.certificate, answers: name) {
                record = NameRecord(credentials: credentials, at: unixTime)
            }
            send(.answer(token: token, record: record), to: header.source, mode: .exact)
        case .answer(let token, let record):
            if let record, let refusal = record.refusal(by: credentials, at: unixTime) {
                return stats.drop(.nameRefused(refusal))
            }
            switch names.answered(token, record: record, now: scheduler.now) {
            case .done(let completions):
                timers.removeValue(forKey: .nameLookup(token: token))?.cancel()
                for completion in completions { completion(.success(record)) }
            case .askAgain(let number):
                guard let name = names.name(ofLookup: token) else { return }
                askForName(name, token: token, try: number, network: credentials.authority.network)
            case .waiting: break
            }
        }
    }
}

/// A node someone named, as far as this node knows it.
public struct ResolvedTarget: Sendable, Equatable {
    public var address: Address
    /// Its certificate name, if known.
    public var name: String?
    public var virtualIPs: [VirtualIP]
}

/// Why a name, virtual IP or address does not lead to a node.
public enum NameLookupFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case notATarget(String)
    case virtualIPWithoutSecurity(String)
    case unknownName(String)
    /// The name service did not answer in time.
    case noAnswer(String)

    public var description: String {
        switch self {
        case .notATarget(let text):
            return "'\(text)' is neither a member name, a virtual IP nor a 40-hex-digit ring address"
        case .virtualIPWithoutSecurity(let text):
            return "\(text) is a virtual IP, but this node runs without security: virtual IPs need certificates"
        case .unknownName(let name): return "no member named '\(name)' is known"
        case .noAnswer(let name): return "the name service gave no answer about '\(name)' in time; try again"
        }
    }
}
