import Transports
import WOWKit

/// What `wow sim` (and the simulation tests) run: how many nodes, on what simulated network, with what churn.
public struct SimulationOptions: Sendable {
    public var nodes = 1000
    public var seed: UInt64 = 1
    /// Round-trip times are drawn per pair of hosts from this range.
    public var roundTrip: ClosedRange<Duration> = .milliseconds(20) ... .milliseconds(250)
    /// Probability that any one packet is lost.
    public var loss: Double = 0
    /// The share of nodes behind each kind of NAT; the rest are public.
    public var natMix: [NATBehaviour: Double] = [:]
    /// New nodes start one per this interval.
    public var joinInterval: Duration = .milliseconds(100)
    /// Quiet time after the last join before measuring.
    public var settle: Duration = .seconds(30)
    /// Random exact-mode messages sent to measure delivery and hops.
    public var messages = 1000
    /// Nodes leaving (crashing) and as many joining per virtual minute during the churn phase.
    public var churnPerMinute: Double = 0
    public var churnDuration: Duration = .seconds(300)
    /// Flows started after the join phase between random pairs of nodes that are not directly connected
    /// (10 packets a second each way), to measure the time from a flow's first packet to its shortcut.
    public var flows = 0
    /// Name lookups after the join phase (secured runs): random members look up the names of random members
    /// they are not connected to, through the name service.
    public var nameLookups = 0
    /// Near neighbours per side.
    public var nearPerSide = 2
    /// Whether nodes hold membership certificates of one simulated network and secure every edge (the
    /// default, as real nodes run); off measures the overlay without cryptography.
    public var secure = true
    /// Whether a joiner's config names its bootstrap node's handshake key (`NodeConfig.bootstrapHandshakeKeys`),
    /// as a deployment's bootstrap list may: its first link takes one round trip. Secured runs only.
    public var bootstrapKeys = true
    /// Settings of `structured.far` (YAML mapping), empty for defaults.
    public var farSettingsYAML = ""
    /// Where the per-node join times go, if anywhere.
    public var csvPath: String?

    public init() {}

    /// Checks the options; the error says which option is wrong and why.
    public func validate() throws(SimulationError) {
        guard nodes >= 2 else { throw .badOption("--nodes", "must be at least 2, got \(nodes)") }
        guard nodes <= 200_000 else { throw .badOption("--nodes", "at most 200000 nodes fit one process, got \(nodes)") }
        guard roundTrip.lowerBound > .zero else { throw .badOption("--rtt", "round trips must be positive") }
        guard (0..<1).contains(loss) else { throw .badOption("--loss", "must be in [0, 1), got \(loss)") }
        let natShare = natMix.values.reduce(0, +)
        guard natMix.values.allSatisfy({ $0 >= 0 }), natShare <= 1.000_001 else {
            throw .badOption("--nat", "shares must be >= 0 and add up to at most 1, got \(natShare)")
        }
        guard messages >= 0 else { throw .badOption("--messages", "must be >= 0") }
        guard flows >= 0, flows <= nodes / 2 else {
            throw .badOption("--flows", "must be 0 ... half the nodes (\(nodes / 2)), got \(flows)")
        }
        guard nameLookups >= 0, nameLookups <= 100_000 else {
            throw .badOption("--name-lookups", "must be 0...100000, got \(nameLookups)")
        }
        guard nameLookups == 0 || secure else {
            throw .badOption("--name-lookups", "names need certificates: drop --insecure")
        }
        guard churnPerMinute >= 0 else { throw .badOption("--churn", "must be >= 0") }
        guard joinInterval >= .zero else { throw .badOption("--join-interval", "must be >= 0") }
        guard (1...8).contains(nearPerSide) else { throw .badOption("--near", "must be 1...8") }
    }
}

/// A simulation that cannot run as asked.
public enum SimulationError: Error, CustomStringConvertible, Equatable {
    case badOption(String, String)
    case setup(String)

    public var description: String {
        switch self {
        case .badOption(let option, let reason): return "\(option): \(reason)"
        case .setup(let reason): return "simulation setup failed: \(reason)"
        }
    }
}
