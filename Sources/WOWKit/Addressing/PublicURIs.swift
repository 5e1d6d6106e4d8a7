/// Where peers see this node: the URIs they reported observing it at (its NAT mappings), newest first, and
/// whether it is reachable with no NAT in between. The one owner of what a node learns about its own public
/// addresses; it also notices when the NAT rebinds (a new mapping at an address seen before).
public struct PublicURIs: Sendable {
    /// URIs peers reported seeing this node at, newest first (one per scheme and address).
    public private(set) var observed: [TransportURI] = []
    /// The same, as a set.
    public private(set) var observedSet: Set<TransportURI> = []
    /// Whether anyone can reach this node directly (unless a stateful firewall blocks what it did not ask
    /// for): a peer saw it at a URI its transport is bound to, and no peer saw it at one it is not bound to.
    /// Both happen to a node behind a NAT with another node on its LAN (which reaches it at its private
    /// address): that node is behind a NAT for everyone else.
    public var isReachableDirectly: Bool { reachedWhereBound && natMappings.isEmpty }
    /// A peer saw this node at a URI its transport is bound to (no NAT between the two).
    private var reachedWhereBound = false
    /// URIs peers saw this node at that it is not bound to: its NAT's mappings.
    public private(set) var natMappings: Set<TransportURI> = []
    /// Whether peers beyond our NAT saw us only over stream connections, never at a datagram socket's mapping:
    /// a firewall lets out TCP (or only TLS on 443) and no UDP, so no punch of ours gets out (`Node.punchesNothing`).
    public var onlyStreamsGetOut: Bool { !natMappings.isEmpty && !datagramGotOut }
    /// A peer beyond our NAT saw a datagram socket of ours at its mapping.
    private var datagramGotOut = false
    /// Whether our NAT gives each peer another port for the same socket (an endpoint-dependent mapping, a
    /// "symmetric" NAT): two peers saw us at two ports of one address, and no mapping was seen by two peers.
    /// No mapping peers report is then open to a new peer, so a peer behind a filtering NAT cannot punch to
    /// us, nor we to it: such a pair relays at once (docs/architecture.md, "Hole punching").
    public private(set) var mapsPerPeer = false
    /// The newest NAT mapping of a datagram socket a peer reported.
    private var lastMapping: TransportURI?
    /// The newest mapping of a datagram socket while only one peer has seen it and `mapsPerPeer` is not known:
    /// a second peer's view would tell.
    public var singleViewMapping: TransportURI? {
        guard !mapsPerPeer, let lastMapping, reporters[lastMapping]?.count == 1 else { return nil }
        return lastMapping
    }
    /// Every URI peers ever reported seeing this node at.
    private var everObserved: Set<TransportURI> = []
    /// Up to two peers that reported each observed URI.
    private var reporters: [TransportURI: Set<Address>] = [:]
    /// How many URIs' reporters are remembered before those no longer listed are forgotten.
    static let maximumReported = 64

    public init() {}

    /// What learning an observed URI changed.
    public struct Learned: Equatable, Sendable {
        /// The URI is now the newest: the transport should list it and the node's info changes.
        public var isNewest: Bool
        /// Our NAT gave us a new mapping at an address peers saw us at before (two peers saw the old one, so
        /// it was endpoint-independent): the old mapping is stale.
        public var rebound: Bool
        /// Whether `isReachableDirectly` changed.
        public var reachabilityChanged: Bool
        /// Whether `mapsPerPeer` changed.
        public var mapsPerPeerChanged = false
    }

    /// A peer reached or saw us at `uri`. `isBound`: our transport is bound to exactly that URI; `isOwnHost`:
    /// to that host (a port we did not bind is a connection's source port, no NAT). Where we are bound (and
    /// not at a mapping a peer reported before, which transports list too) there is no NAT in between; at a
    /// host that is not ours there is one. `isMapping`: the URI is a datagram socket's (as for `learn`).
    /// Returns whether that changed `isReachableDirectly`.
    public mutating func noteReached(at uri: TransportURI, isBound: Bool, isOwnHost: Bool, isMapping: Bool = true) -> Bool {
        let before = isReachableDirectly
        if isMapping && !isBound && !isOwnHost { datagramGotOut = true }
        if natMappings.contains(uri) || everObserved.contains(uri) {
            // Seen before: a mapping our transport lists now, or nothing new.
        } else if isBound {
            reachedWhereBound = true
        } else if !isOwnHost {
            natMappings.insert(uri)
        }
        return isReachableDirectly != before
    }

    /// Peer `reporter` saw us at `uri` (`isBound`, `isOwnHost`: as for `noteReached`). `isMapping`: the URI is
    /// the NAT's mapping of the one socket every peer reaches (a datagram transport), not the source port of one
    /// stream connection; only such mappings tell how the NAT maps.
    public mutating func learn(_ uri: TransportURI, from reporter: Address, isBound: Bool, isOwnHost: Bool,
                               isMapping: Bool = true) -> Learned {
        let mappedPerPeerBefore = mapsPerPeer
        if isMapping && !isBound && !isOwnHost { noteMapping(uri, from: reporter) }
        if reporters[uri, default: []].count < 2 { reporters[uri, default: []].insert(reporter) }
        if reporters.count > PublicURIs.maximumReported {
            // Behind a symmetric NAT every peer adds one; keep those still listed.
            reporters = reporters.filter { observed.contains($0.key) || $0.key == uri }
        }
        let reachabilityChanged = noteReached(at: uri, isBound: isBound, isOwnHost: isOwnHost, isMapping: isMapping)
        everObserved.insert(uri)
        guard observed.first != uri else {
            return Learned(isNewest: false, rebound: false, reachabilityChanged: reachabilityChanged,
                           mapsPerPeerChanged: mapsPerPeer != mappedPerPeerBefore)
        }
        let host = uri.hostAndPort?.host
        // Only a mapping that two peers saw is endpoint-independent; behind a symmetric NAT every peer sees
        // another port, which is no rebinding.
        let rebound = host != nil && observed.contains {
            $0 != uri && $0.scheme == uri.scheme && $0.hostAndPort?.host == host && (reporters[$0]?.count ?? 0) >= 2
        }
        observed.removeAll { $0 == uri || ($0.scheme == uri.scheme && host != nil && $0.hostAndPort?.host == host) }
        observed.insert(uri, at: 0)
        observedSet = Set(observed)
        return Learned(isNewest: true, rebound: rebound, reachabilityChanged: reachabilityChanged,
                       mapsPerPeerChanged: mapsPerPeer != mappedPerPeerBefore)
    }

    /// Updates `mapsPerPeer` from a NAT mapping `reporter` saw (before `reporters` counts it): another peer
    /// saw another port at the same address → per peer; two peers saw this one → one mapping for all.
    private mutating func noteMapping(_ uri: TransportURI, from reporter: Address) {
        lastMapping = uri
        let seenBy = reporters[uri] ?? []
        if !seenBy.isEmpty && !seenBy.contains(reporter) {
            mapsPerPeer = false
            return
        }
        guard let host = uri.hostAndPort?.host else { return }
        let otherPort = observed.first { $0 != uri && $0.scheme == uri.scheme && $0.hostAndPort?.host == host }
        if let otherPort, let others = reporters[otherPort], others.count == 1, !others.contains(reporter) {
            mapsPerPeer = true
        }
    }

    /// A peer's URIs in the order to try them. Those at our own NAT's public address (a mapping peers saw us at)
    /// mean the peer sits behind the same NAT: it reaches them only if it hairpins, which a Linux NAT does not,
    /// while the peer's own (LAN) address is one hop away. So they go after the peer's other direct URIs (before
    /// any relay URI, which has no host): a joiner on the LAN of a peer it pinged went direct only after its
    /// relay had formed and a direct retry came around, 11-15 s in the testbed. Unchanged when we are not behind
    /// a NAT or the peer lists nothing else. Behind a carrier-grade NAT (which must hairpin) this costs the LAN
    /// address's reply timeout first.
    ///
    /// And when only our streams get out (`onlyStreamsGetOut`), the peer's URIs of the transports peers beyond
    /// our NAT saw us over go first: an attempt's first round races its URIs a `race_delay_ms` (250 ms) apart,
    /// so behind a firewall that lets out only TLS on 443 every link to a public peer that lists udp, tcp and
    /// tls waited 500 ms for its one try that could work (the testbed's 443-only joiners were routable after
    /// 1.0-1.35 s in three of seven trials).
    public func inTryingOrder(_ uris: [TransportURI]) -> [TransportURI] {
        guard !natMappings.isEmpty else { return uris }
        return lanAddressesFirst(onlyStreamsGetOut ? transportsThatGetOutFirst(uris) : uris)
    }

    /// The URIs of the transports peers beyond our NAT saw us over first, each group in its order.
    private func transportsThatGetOutFirst(_ uris: [TransportURI]) -> [TransportURI] {
        let out = Set(natMappings.map(\.scheme))
        return uris.filter { out.contains($0.scheme) } + uris.filter { !out.contains($0.scheme) }
    }

    /// `uris` with those at our own NAT's public address after the peer's other direct URIs.
    private func lanAddressesFirst(_ uris: [TransportURI]) -> [TransportURI] {
        let natHosts = Set(natMappings.compactMap { $0.hostAndPort?.host })
        func isAtOurNAT(_ uri: TransportURI) -> Bool { uri.hostAndPort.map { natHosts.contains($0.host) } ?? false }
        let atOurNAT = uris.filter(isAtOurNAT)
        let others = uris.filter { !isAtOurNAT($0) }
        guard !atOurNAT.isEmpty, let lastDirect = others.lastIndex(where: { $0.hostAndPort != nil }) else { return uris }
        return others[...lastDirect] + atOurNAT + others[(lastDirect + 1)...]
    }

    /// The URIs this node gives others, from every URI its transports list (`all`): observed ones first, newest
    /// first (behind a NAT they are the ones others can reach), then the rest in the transports' order, but for
    /// older mappings at an address a newer one replaced. Behind a symmetric NAT each peer saw another port and
    /// none of them is open to a new peer (one at the NAT's address is what a peer needs to open its filter
    /// toward it); after a rebinding the old one is dead. Listing them only made every link attempt and
    /// direct retry toward the node try each in turn.
    ///
    /// Behind a NAT, the NAT's mappings go before URIs a peer saw us at where we are bound: a peer on our LAN
    /// reports our private address, and as the newest report it went first, so peers beyond the NAT tried it
    /// first. An attempt that punches tries one URI at a time, so in the testbed every joiner from another
    /// site that came right after a joiner on the fixed peer's LAN waited a reply timeout on that address and
    /// got a relay (21 of 21 from the other cone NAT).
    public func advertised(from all: [TransportURI]) -> [TransportURI] {
        let listed = observed.filter { all.contains($0) }
        return listed.filter { natMappings.contains($0) } + listed.filter { !natMappings.contains($0) }
            + all.filter { !observedSet.contains($0) && !natMappings.contains($0) }
    }
}
