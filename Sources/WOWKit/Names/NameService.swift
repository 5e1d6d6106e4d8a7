/// A node's part in the overlay's name service (docs/operations.md, "Names"), without I/O: the records it keeps for the
/// names whose ring keys are nearest to it (and replicas of its neighbours'), the answers it remembers, and
/// the lookups it waits on. The node routes what this decides and arms its timers.
public struct NameService {
    public struct Settings: Sendable, Equatable {
        /// How often a member publishes its record again (well within `NameRecord.lifetime`).
        public var refresh: Duration = .seconds(120)
        /// How long one try of a lookup waits for its answers, and how many tries a lookup makes: the first
        /// asks the node nearest the name's key, the second both nodes beside the key (one of them holds a
        /// replica if the nearest is gone and the ring has not noticed yet), the third the nearest again.
        public var lookupTimeout: Duration = .seconds(1)
        public var lookupTries = 3
        /// How long a found record answers lookups without asking again, and a name nobody holds.
        public var cacheFor: Duration = .seconds(60)
        public var negativeCacheFor: Duration = .seconds(5)
        /// Records kept for others, answers remembered, lookups waiting: beyond these, new ones are refused.
        public var maximumStored = 10_000
        public var maximumCached = 1_024
        public var maximumLookups = 1_024

        public init() {}
    }

    /// How a lookup ended: the record, nil when no member has that name.
    public typealias Completion = (Result<NameRecord?, NameLookupTimeout>) -> Void

    struct Lookup {
        var name: String
        var tries: Int
        var completions: [Completion]
        /// Answers of the current try still to come: "nobody" ends a lookup only when every asked node said so.
        var awaitedAnswers = 1
    }

    /// Where a lookup's try sends its question(s), in the routing modes to the name's ring key.
    public static func modes(forTry number: Int) -> [DeliveryMode] { number == 2 ? [.left, .right] : [.nearest] }

    public let settings: Settings
    /// Records kept for other members, by key: lowercased name, and virtual IPs beyond a member's first.
    public private(set) var stored: [String: NameRecord] = [:]
    private var cache: [String: (record: NameRecord?, until: Timestamp)] = [:]
    private var lookups: [UInt64: Lookup] = [:]
    private var lookupByName: [String: UInt64] = [:]

    public init(settings: Settings = Settings()) { self.settings = settings }

    // MARK: - Keeping records

    /// What keeping a record did.
    public enum Kept: Equatable, Sendable {
        /// A record this node did not hold (or a newer one): worth passing to replicas.
        case new
        /// The same record or an older one: nothing to do.
        case known
        case refused(NameRecordRefusal)
        /// The store is full.
        case full
    }

    /// Keeps `record` under each of its keys (`NameRecord.keys`) if it is believable and newer than what the
    /// node holds for that key.
    public mutating func keep(_ record: NameRecord, credentials: NodeCredentials, unixTime: Int64) -> Kept {
        let keys = record.keys
        let fresh = keys.filter { key in
            guard let held = stored[key] else { return true }
            return held.publishedAt < record.publishedAt || (held.publishedAt == record.publishedAt && held.certificate != record.certificate)
        }
        guard !fresh.isEmpty else { return .known }
        if let refusal = record.refusal(by: credentials, at: unixTime) { return .refused(refusal) }
        let added = fresh.filter { stored[$0] == nil }.count
        if stored.count + added > settings.maximumStored {
            sweep(unixTime: unixTime)
            guard stored.count + added <= settings.maximumStored else { return .full }
        }
        for key in fresh {
            stored[key] = record
            handedTo[key] = nil
        }
        return .new
    }

    /// The record kept for `key` (a name or a virtual IP's text), if it is still fresh.
    public func record(forKey key: String, unixTime: Int64) -> NameRecord? {
        guard let record = stored[key.lowercased()], record.publishedAt + NameRecord.lifetime >= unixTime else { return nil }
        return record
    }

    /// Forgets records past their lifetime and answers past their time.
    public mutating func sweep(unixTime: Int64, now: Timestamp? = nil) {
        stored = stored.filter { $0.value.publishedAt + NameRecord.lifetime >= unixTime }
        ringKeys = ringKeys.filter { stored[$0.key] != nil }
        handedTo = handedTo.filter { stored[$0.key] != nil }
        if let now { cache = cache.filter { $0.value.until > now } }
    }

    /// Records some peer should keep rather than this node (`local`): for each record, the peer nearest its
    /// ring key (`nearestPeer`), if that one is nearer than this node and was not handed the record already.
    /// The ring grows and changes around a record's key; each node passing it on to a nearer one brings it to
    /// the node nearest the key (the distance shrinks with every hand, so it ends). Where this node is the
    /// nearest, its ring neighbours (`neighbours`, left then right) keep the replicas: a node that joined beside
    /// it since the record came gets one too, or the record would die with this node.
    public mutating func handovers(from local: Address, network: NetworkID, neighbours: [Address] = [],
                                   nearestPeer: (Address) -> Address?) -> [(record: NameRecord, to: Address)] {
        var handed: [(record: NameRecord, to: Address)] = []
        // In name order: the puts go out in it, and the simulator must repeat a run for its seed.
        for (name, record) in stored.sorted(by: { $0.key < $1.key }) {
            let key = ringKeys[name] ?? NameRecord.ringKey(forKey: name, network: network)
            ringKeys[name] = key
            let nearer = nearestPeer(key).flatMap { key.distance(to: $0) < key.distance(to: local) ? $0 : nil }
            let targets = nearer.map { [$0] } ?? neighbours
            for peer in targets where peer != record.address && peer != local && !(handedTo[name]?.contains(peer) ?? false) {
                handedTo[name, default: []].insert(peer)
                // A record kept under several keys (its name, its IPs) goes to a peer once.
                if !handed.contains(where: { $0.to == peer && $0.record == record }) { handed.append((record, peer)) }
            }
        }
        return handed
    }

    /// Ring keys of the records kept, and the peers each version was handed to (a table that changes back and
    /// forth does not send it again).
    private var ringKeys: [String: Address] = [:]
    private var handedTo: [String: Set<Address>] = [:]

    // MARK: - Lookups

    /// What the node does for a lookup.
    public enum LookupStart {
        /// Answered from memory.
        case answered(NameRecord?)
        /// Send a `name_get` with this token (a new lookup) and arm its timer.
        case ask(token: UInt64)
        /// Another lookup of the name is on its way: its answer serves this one too.
        case joined
        case tooMany
    }

    /// Starts looking up `name` (a name or a virtual IP's text, lowercased); `token` is the one to use if a
    /// question must go out.
    public mutating func lookUp(_ name: String, token: UInt64, now: Timestamp, completion: @escaping Completion) -> LookupStart {
        let name = name.lowercased()
        if let cached = cache[name], cached.until > now { return .answered(cached.record) }
        if let pending = lookupByName[name] {
            lookups[pending]?.completions.append(completion)
            return .joined
        }
        guard lookups.count < settings.maximumLookups else { return .tooMany }
        lookups[token] = Lookup(name: name, tries: 1, completions: [completion])
        lookupByName[name] = token
        return .ask(token: token)
    }

    /// The name a waiting lookup asks for.
    public func name(ofLookup token: UInt64) -> String? { lookups[token]?.name }

    /// What an answer does to its lookup.
    public enum Answered {
        /// The lookup ended: call these with the outcome.
        case done([Completion])
        /// The node nearest the key said "nobody": ask the two beside the key now (try `2`) before believing
        /// it (the ring may have moved the record's storer a moment ago).
        case askAgain(try: Int)
        /// Nothing to do: no lookup waits for it, it is not for the name asked, or other answers are to come.
        case waiting
    }

    /// An answer came.
    public mutating func answered(_ token: UInt64, record: NameRecord?, now: Timestamp) -> Answered {
        guard var lookup = lookups[token] else { return .waiting }
        if let record, !record.answers(lookup.name) { return .waiting }
        if record == nil && lookup.awaitedAnswers > 1 {
            lookup.awaitedAnswers -= 1
            lookups[token] = lookup
            return .waiting
        }
        if record == nil && lookup.tries == 1 && settings.lookupTries >= 2 {
            lookup.tries = 2
            lookup.awaitedAnswers = NameService.modes(forTry: 2).count
            lookups[token] = lookup
            return .askAgain(try: 2)
        }
        lookups[token] = nil
        lookupByName[lookup.name] = nil
        if cache.count >= settings.maximumCached { cache = cache.filter { $0.value.until > now } }
        if cache.count < settings.maximumCached {
            cache[lookup.name] = (record, now + (record == nil ? settings.negativeCacheFor : settings.cacheFor))
        }
        return .done(lookup.completions)
    }

    /// A lookup's timer fired: ask again (the try's number, for `modes(forTry:)`) or give up, returning the
    /// completions to fail.
    public mutating func timedOut(_ token: UInt64) -> (askAgain: Int?, failed: [Completion]) {
        guard var lookup = lookups[token] else { return (nil, []) }
        if lookup.tries < settings.lookupTries {
            lookup.tries += 1
            lookup.awaitedAnswers = NameService.modes(forTry: lookup.tries).count
            lookups[token] = lookup
            return (lookup.tries, [])
        }
        lookups[token] = nil
        lookupByName[lookup.name] = nil
        return (nil, lookup.completions)
    }

    /// Every lookup, ended (the node stops): their completions.
    public mutating func cancelAll() -> [Completion] {
        let all = lookups.values.flatMap(\.completions)
        lookups.removeAll()
        lookupByName.removeAll()
        return all
    }
}

/// A lookup got no answer in time.
public struct NameLookupTimeout: Error, Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var description: String { "no answer about '\(name)' from the name service" }
}
