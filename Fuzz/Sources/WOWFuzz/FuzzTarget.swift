/// One fuzz target: a parser (or a parser and the state machine behind it) fed with libFuzzer's bytes.
///
/// `run` gets one input, must return normally for every input the code under test is meant to survive, and
/// traps (`require`) when an invariant breaks: a crash, a leak, a hang or a failed `require` is a finding.
/// It must be deterministic: the same bytes take the same path (no clock, no system randomness), so that a
/// reproducer file replays the finding.
protocol FuzzTarget {
    /// The name given to `Scripts/fuzz.sh` and `WOW_FUZZ_TARGET` (e.g. `edge-message`).
    static var name: String { get }
    /// One line: what the target feeds and what it checks.
    static var summary: String { get }
    /// Inputs built from real encodings, written to `Fuzz/Corpus/<name>/seed-<key>` by `Scripts/fuzz.sh seeds`.
    static func seeds() -> [(key: String, bytes: [UInt8])]
    static func run(_ data: [UInt8])
}

/// Every target, in the order `Scripts/fuzz.sh all` runs them.
let fuzzTargets: [FuzzTarget.Type] = [
    EdgeMessageTarget.self,
    RoutedPacketTarget.self,
    SecureChannelTarget.self,
    UDPReassemblerTarget.self,
    TCPFramesTarget.self,
    CertificateTarget.self,
    CredentialFileTarget.self,
    ConfigTarget.self,
    IPTarget.self,
    TunOffloadTarget.self,
    DNSQueryTarget.self,
]
