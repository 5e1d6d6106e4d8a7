/// What peers said of themselves in their NodeInfos (a CTM's requester, a CTM reply's responder, a link
/// request's requester), by address: the static handshake key for the first init to them, and whether their
/// NAT maps per peer (a pair that cannot punch relays at once). Bounded: beyond `capacity` the longest known is
/// forgotten (a link to that peer then takes two round trips, and relays only after `relay_after_ms`).
struct PeerSelfReports {
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
        let key = info.handshakeKey.flatMap { $0.count == NodeInfo.handshakeKeySize ? $0 : nil }
        let report = Report(handshakeKey: key, mapsPerPeer: info.mapsPerPeer)
        guard report != Report() || reports[info.address] != nil else { return }
        if reports.updateValue(report, forKey: info.address) == nil {
            order.append(info.address)
            if order.count > PeerSelfReports.capacity { reports[order.removeFirst()] = nil }
        }
    }
}
