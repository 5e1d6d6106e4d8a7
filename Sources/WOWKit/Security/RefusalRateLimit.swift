/// How often one edge refuses: a refusal frame at most once a second, a warning in the log at most once a
/// minute (debug while it repeats). One per edge, for a `SecuredEdge` and for a node without security alike.
struct RefusalRateLimit {
    private var last: Timestamp?

    /// Records a refusal at `now`: whether a refusal frame may go out, and whether its log line repeats one.
    mutating func note(at now: Timestamp) -> (maySend: Bool, isRepeat: Bool) {
        defer { last = now }
        guard let last else { return (true, false) }
        return (now - last >= .seconds(1), now - last < .seconds(60))
    }
}
