/// A node's open edges by `EdgeID`, with what the node remembers about each: when it opened, rate limits for
/// what the node tells the other end, and the peer whose connection just left it.
///
/// Which connection an edge carries is the connection table's (`ConnectionTable.peer(on:)`); this table only
/// knows edges. Confined to the node's executor, like the node.
struct EdgeTable {
    struct Record {
        /// The edge the node speaks to: the transport's, or a `SecuredEdge` around it.
        var edge: any Edge
        /// The transport's edge, for its capabilities (`HolePunchingEdge`).
        var transportEdge: any Edge
        var openedAt: Timestamp
        /// When we last told the remote end that this edge carries no connection (rate limit).
        var notLinkedSentAt: Timestamp?
        /// Refusals of the remote end's secure frames (a node without security).
        var refusals = RefusalRateLimit()
        /// The peer whose connection moved from this edge to another, or was trimmed here: it may still send
        /// here for a moment, so the edge stays open a while and what arrives on it is taken as that peer's
        /// connection traffic (`release`).
        var formerPeer: Address?
        /// When the connection left (`release`): the stale-edge sweep counts from then.
        var releasedAt: Timestamp?
        /// Since when the node sent here without receiving anything (`PathWatch`); nil while the edge answers.
        var unansweredSince: Timestamp?
        /// When the node last probed the edge (`PathWatch`).
        var probedAt: Timestamp?
        /// When a link request of ours went out here, straight onto the wire (not held for a secure handshake):
        /// the reply gives the path's round trip for free. Cleared when the attempt ends; nil and `resent`
        /// when a second request went out before (the reply may answer either, Karn's rule).
        var linkRequestSentAt: Timestamp?
        var linkRequestResent = false
    }

    private var records: [EdgeID: Record] = [:]
    private var ids: [ObjectIdentifier: EdgeID] = [:]
    private var lastNumber: UInt64 = 0

    subscript(id: EdgeID) -> Record? {
        get { records[id] }
        _modify { yield &records[id] }
    }

    /// What sending on an edge needs of its record: the edge, and whether the path watch already waits for an
    /// answer there (`Record.unansweredSince`).
    struct SendingTarget {
        let edge: any Edge
        let isUnanswered: Bool
    }

    /// What receiving on an edge needs of its record: whether the path watch waited for an answer there (now
    /// cleared: this is one), and the peer whose connection left the edge (`Record.formerPeer`).
    struct ReceivingFacts {
        let wasUnanswered: Bool
        let formerPeer: Address?
    }

    /// Notes a packet received on edge `id` (it answers the path: `Record.unansweredSince` cleared), in place;
    /// nil for an edge not in the table.
    mutating func noteReceived(on id: EdgeID) -> ReceivingFacts? {
        guard let index = records.index(forKey: id) else { return nil }
        return EdgeTable.noteReceived(&records.values[index])
    }

    /// Through `inout`: the values' `_modify` reaches the record where it is, where their getter copies it.
    private static func noteReceived(_ record: inout Record) -> ReceivingFacts {
        let wasUnanswered = record.unansweredSince != nil
        if wasUnanswered { record.unansweredSince = nil }
        return ReceivingFacts(wasUnanswered: wasUnanswered, formerPeer: record.formerPeer)
    }

    /// `SendingTarget` of edge `id`, read in place (mutating only for that: see `noteReceived`): copying the
    /// whole record (two existentials, a dozen fields) cost as much, per packet, as the rest of the lookup.
    mutating func sendingTarget(_ id: EdgeID) -> SendingTarget? {
        guard let index = records.index(forKey: id) else { return nil }
        return EdgeTable.sendingTarget(&records.values[index])
    }

    private static func sendingTarget(_ record: inout Record) -> SendingTarget {
        SendingTarget(edge: record.edge, isUnanswered: record.unansweredSince != nil)
    }

    /// A link request of ours went out on `id` at `now` (`Record.linkRequestSentAt`).
    mutating func noteLinkRequestSent(on id: EdgeID, at now: Timestamp) {
        guard var record = records[id] else { return }
        if record.linkRequestSentAt == nil { record.linkRequestSentAt = now } else { record.linkRequestResent = true }
        records[id] = record
    }

    /// The id of a registered edge (the transport's or its wrapper).
    func id(of edge: any Edge) -> EdgeID? { ids[ObjectIdentifier(edge)] }

    /// Since when edge `id` carried sends without an answer (`PathWatch`).
    func unansweredSince(_ id: EdgeID) -> Timestamp? { records[id]?.unansweredSince }

    /// Every registered edge, by id (ascending, so sweeps run in a reproducible order).
    var sorted: [(id: EdgeID, record: Record)] {
        records.keys.sorted().map { ($0, records[$0]!) }
    }

    var all: Dictionary<EdgeID, Record>.Values { records.values }

    /// Registers a transport's `edge` (once: an edge registered before keeps its id), which the node speaks to
    /// through what `wrap` makes of it. Returns its id and, when it is new, the edge to speak to.
    mutating func register(_ edge: any Edge, at now: Timestamp, wrap: (any Edge) -> any Edge) -> (id: EdgeID, new: (any Edge)?) {
        if let id = ids[ObjectIdentifier(edge)] { return (id, nil) }
        lastNumber += 1
        let id = EdgeID(lastNumber)
        let wrapped = wrap(edge)
        ids[ObjectIdentifier(edge)] = id
        ids[ObjectIdentifier(wrapped)] = id
        records[id] = Record(edge: wrapped, transportEdge: edge, openedAt: now)
        return (id, wrapped)
    }

    /// The open edge the connection of `peer` left last (`release`), if any.
    func edge(leftBy peer: Address) -> EdgeID? {
        records.filter { $0.value.formerPeer == peer && !$0.value.edge.isClosed }
            .max { ($0.value.releasedAt ?? .zero, $1.key) < ($1.value.releasedAt ?? .zero, $0.key) }?.key
    }

    /// Forgets edge `id` (it closed, or the node closes it) and returns its record.
    @discardableResult
    mutating func forget(_ id: EdgeID) -> Record? {
        guard let record = records.removeValue(forKey: id) else { return nil }
        ids[ObjectIdentifier(record.edge)] = nil
        ids[ObjectIdentifier(record.transportEdge)] = nil
        return record
    }

    /// The connection of `peer` left edge `id`, which the peer may still use for a moment.
    mutating func release(_ id: EdgeID, from peer: Address, at now: Timestamp) {
        records[id]?.formerPeer = peer
        records[id]?.releasedAt = now
    }

    /// Whether the node may tell the remote end of `id` again that the edge carries no connection (at most
    /// once a second); records the time when it may.
    mutating func mayTellNotLinked(_ id: EdgeID, at now: Timestamp) -> Bool {
        guard let record = records[id] else { return false }
        if let last = record.notLinkedSentAt, now - last < .seconds(1) { return false }
        records[id]?.notLinkedSentAt = now
        return true
    }

    /// An open inbound edge whose remote end is at `uri`, if any.
    func inboundEdge(to uri: TransportURI) -> EdgeID? {
        records.first { $0.value.edge.isInbound && !$0.value.edge.isClosed && $0.value.edge.remoteURI == uri }?.key
    }

    mutating func removeAll() {
        records.removeAll()
        ids.removeAll()
    }
}
