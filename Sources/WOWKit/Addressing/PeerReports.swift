/// What peers said of themselves in their NodeInfos (a CTM's requester, a CTM reply's responder, a link
/// request's requester), by address: the static handshake key for the first init to them, and whether their
/// NAT maps per peer (a pair that cannot punch relays at once); for a node that has not spoken to us yet, the
/// key a neighbour list gave (`noteHearsay`). Bounded: beyond `capacity` the longest known is forgotten (a link
/// to that peer then takes two round trips, and relays only after `relay_after_ms`).
struct PeerReports {
    struct Report: Equatable {
        var handshakeKey: [UInt8]?
        var mapsPerPeer = false
    }

    private var reports: [Address: Report] = [:]
    private var order: [Address] = []
    static let capacity = 4_096

    func handshakeKey(of address: Address) -> [UInt8]? { reports[address]?.handshakeKey }
    func mapsPerPeer(_ address: Address) -> Bool { reports[address]?.mapsPerPeer ?? false }

    mutating func note(_ info: NodeInfo) {
        let report = Report(handshakeKey: Self.key(of: info), mapsPerPeer: info.mapsPerPeer)
        guard report != Report() || reports[info.address] != nil else { return }
        store(report, for: info.address)
    }

    /// A neighbour list's (or an overlord's `ConnectRequest.peer`) word for a node we have no key of yet: its key, for a first init in one round trip.
    /// Never over what a node said of itself (a stale or false key costs only that round trip: the response
    /// is signed by the node the edge reaches).
    mutating func noteHearsay(_ info: NodeInfo) {
        guard let key = Self.key(of: info), reports[info.address]?.handshakeKey == nil else { return }
        var report = reports[info.address] ?? Report()
        report.handshakeKey = key
        store(report, for: info.address)
    }

    private static func key(of info: NodeInfo) -> [UInt8]? {
        info.handshakeKey.flatMap { $0.count == NodeInfo.handshakeKeySize ? $0 : nil }
    }

    private mutating func store(_ report: Report, for address: Address) {
        if reports.updateValue(report, forKey: address) == nil {
            order.append(address)
            if order.count > PeerReports.capacity { reports[order.removeFirst()] = nil }
        }
    }
}
