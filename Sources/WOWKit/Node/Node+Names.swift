/// Who the node's peers are, for people: the names their certificates give them.
extension Node {
    /// The certificate `peer` proved to this node: on the edge of its connection, or in an end-to-end session.
    public func certificate(of peer: Address) -> MembershipCertificate? {
        if let connection = table.connection(to: peer), let certificate = securedEdge(connection.edgeID)?.peerCertificate {
            return certificate
        }
        return endToEnd?.certificate(of: peer)
    }

    /// `peer`'s certificate name if the node knows it, else its short address.
    public func displayName(of peer: Address) -> String {
        certificate(of: peer)?.name ?? peer.short
    }
}
