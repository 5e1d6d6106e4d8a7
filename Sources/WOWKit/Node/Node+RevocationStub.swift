// STUB for the cli branch only: the lead's Node integration provides the real `updateRevocations`; delete
// this file at merge.
extension Node {
    /// Replaces the set of revoked certificate fingerprints (call on the node's executor). Stub: does nothing
    /// until secure sessions are wired into `Node`.
    public func updateRevocations(_ revoked: Set<CertificateFingerprint>) {
        logger.debug("revocation list updated (stub: not applied)", metadata: ["count": "\(revoked.count)"])
    }
}
