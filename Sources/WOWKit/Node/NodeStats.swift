/// Counters of one node: traffic, link attempts, and every dropped packet by reason.
public struct NodeStats: Sendable {
    /// Edge messages received and sent (before sealing on a secured node).
    public var packetsIn = 0
    public var packetsOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    public var routedForwarded = 0
    public var routedDelivered = 0
    public var linkAttempts = 0
    public var linkFailures = 0
    public var connectsRequested = 0
    public var connectsFailed = 0
    /// `nearest` Connect-To-Me messages handed on to a neighbour a direct path reaches (`Node.delegate`).
    public var connectsHandedOn = 0
    /// Connections moved off a path that stopped answering (`PathWatch`).
    public var failovers = 0
    /// Times the host's interface addresses changed (it moved to another network) and every connection relinked.
    public var networkChanges = 0
    /// Pings sent to probe a path that carried sends without answers (`PathWatch`).
    public var pathProbes = 0
    /// Exact-mode packets this node could not route greedily, sent to the peer that reported their destination
    /// as its neighbour instead (a ring neighbour whose link was still forming).
    public var routedViaReporter = 0
    /// Packets sent over the ring around a connection whose path went silent (`Router.detour`), rather than
    /// into it while it moves.
    public var routedAroundSilentPaths = 0
    /// Own data packets that waited for a route while the node's place in the ring formed, and packets passed on
    /// by a joiner that waited for this node's own way into the ring (`HeldPackets`).
    public var heldForRoute = 0
    /// Dropped packets by reason (`DropReason.description`: `truncated`, `not_linked`, `ttl_expired`, ...);
    /// `drops.byName` lists only the reasons seen.
    public var drops = DropCounter<DropReason>()

    public init() {}

    mutating func drop(_ reason: DropReason) { drops.count(reason) }

    /// Counts an edge message received (`isSent` false) or sent, of `bytes` bytes: one access of the node's
    /// stats per packet.
    mutating func count(bytes: Int, isSent: Bool) {
        if isSent {
            packetsOut += 1
            bytesOut += bytes
        } else {
            packetsIn += 1
            bytesIn += bytes
        }
    }
}

/// Why a node dropped a packet. Its description is the counter's name in `NodeStats.drops`, `wow status` and
/// the metrics (`wow_drops_total{reason=...}`), so those names stay as they are.
public enum DropReason: Equatable, DropCounterReason {
    /// Connection traffic on an edge that carries no connection.
    case notLinked
    /// A routed packet ran out of hops here.
    case ttlExpired
    /// A routed packet this node could not route on (`route_<code>_<payload type>`).
    case routing(RoutingError.Code, PayloadType)
    /// Plaintext exact-mode data from a node that is not the last hop, on a secured node (it must come sealed
    /// end to end).
    case unauthenticatedData
    case unknownPayloadType
    /// A Connect-To-Me reply for a leaf this gateway no longer holds.
    case ctmReplyNoRequester
    case truncatedTunnel
    case noTunnelTransport
    case tunnelFrameTooLarge
    case tunnelNoRoute
    /// A secure frame or payload reaching a node without security, or an end-to-end plaintext of an unknown
    /// type, or our own end-to-end handshake coming back.
    case secureFrameWithoutSecurity
    case securePayloadWithoutSecurity
    case secureUnknownPayload
    case secureReachedSelf
    /// A malformed packet.
    case malformed(WireError)
    /// A security refusal, ours or the peer's.
    case refused(SecurityRefusal)
    /// A frame a secure session dropped (replayed, outside the window, a full handshake queue, ...).
    case secureSession(String)
    /// A packet the virtual network dropped (`vnet_<reason>`).
    case virtualNetwork(String)
    /// A packet from a remote without an edge that could not come from a member (a secured node makes an
    /// edge only for a handshake init with its network's admission MAC): nothing kept, nothing answered.
    case notAdmitted
    /// An echo request over the reply budget (`PendingEchoes.repliesPerSecond`), or a reply nobody waits for.
    case echoReplyLimit
    case echoUnexpected
    /// A name service message on a node without security, a record not believed, a full store.
    case namesWithoutSecurity
    case nameRefused(NameRecordRefusal)
    case nameStoreFull

    public var description: String {
        switch self {
        case .notLinked: return "not_linked"
        case .ttlExpired: return "ttl_expired"
        case .routing(let code, let type): return "route_\(code)_\(type)"
        case .unauthenticatedData: return "unauthenticated_data"
        case .unknownPayloadType: return "unknown_payload_type"
        case .ctmReplyNoRequester: return "ctm_reply_no_requester"
        case .truncatedTunnel: return "truncated_tunnel"
        case .noTunnelTransport: return "no_tunnel_transport"
        case .tunnelFrameTooLarge: return "tunnel_frame_too_large"
        case .tunnelNoRoute: return "tunnel_no_route"
        case .secureFrameWithoutSecurity: return "secure_frame_without_security"
        case .securePayloadWithoutSecurity: return "secure_payload_without_security"
        case .secureUnknownPayload: return "secure_unknown_payload"
        case .secureReachedSelf: return "secure_reached_self"
        case .malformed(let error): return error.reason
        case .refused(let refusal): return refusal.reason
        case .secureSession(let reason): return reason
        case .virtualNetwork(let reason): return "vnet_\(reason)"
        case .notAdmitted: return "not_admitted"
        case .echoReplyLimit: return "echo_reply_limit"
        case .echoUnexpected: return "echo_unexpected"
        case .namesWithoutSecurity: return "names_without_security"
        case .nameRefused(let refusal): return refusal.reason
        case .nameStoreFull: return "name_store_full"
        }
    }
}
