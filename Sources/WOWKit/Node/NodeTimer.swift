/// The timers a node arms, by purpose: one of each is armed at a time.
public enum NodeTimer: Hashable, Sendable, CustomStringConvertible {
    /// The next tick of one overlord.
    case overlordTick(OverlordID)
    /// The next liveness round.
    case liveness
    /// The next check of paths that carry sends without answers (`PathWatch`).
    case pathCheck
    /// A burst of table changes coalesced into one round of status messages.
    case status
    /// The next check of peers' certificates (secured nodes).
    case securityCheck
    /// Whether the host's interface addresses changed (`EdgeListener.refreshLocalAddresses`).
    case interfaceCheck
    /// A link attempt's reply or punch-hold timer (`Linker.Action.armTimer`).
    case linkAttempt(token: UInt64)
    /// A link attempt's relay URIs start beside its direct ones (`Linker.fallbackTimerFired`).
    case linkFallback(token: UInt64)
    /// A Connect-To-Me's deadline.
    case connect(token: UInt64)
    /// An overlay echo's deadline.
    case echo(token: UInt64)
    /// Publishing this node's name record (again).
    case namePublish
    /// A name lookup's try ends.
    case nameLookup(token: UInt64)
    /// The oldest packet waiting for a route runs out of time (`HeldPackets`).
    case heldPackets
    /// An end-to-end init with data behind it goes unanswered (`SecureChannel.retransmit`).
    case endToEndRetransmit

    public var description: String {
        switch self {
        case .overlordTick(let id): return "tick(\(id))"
        case .liveness: return "liveness"
        case .pathCheck: return "paths"
        case .status: return "status"
        case .securityCheck: return "security"
        case .interfaceCheck: return "interfaces"
        case .linkAttempt(let token): return "link(\(token))"
        case .linkFallback(let token): return "link-fallback(\(token))"
        case .connect(let token): return "connect(\(token))"
        case .echo(let token): return "echo(\(token))"
        case .namePublish: return "name-publish"
        case .nameLookup(let token): return "name-lookup(\(token))"
        case .heldPackets: return "held-packets"
        case .endToEndRetransmit: return "end-to-end-retransmit"
        }
    }
}

/// One of a node's overlords, by its place in the configuration; `core` for what the node does itself (the
/// relay's forwarders), which no overlord hears of.
public struct OverlordID: Hashable, Sendable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }

    /// The node itself.
    public static let core = OverlordID(-1)

    public var description: String { self == .core ? "core" : "overlord\(index)" }
}
