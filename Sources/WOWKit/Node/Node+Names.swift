/// Who the node's peers are, for people: the names their certificates give them, and what a name, virtual IP
/// or address someone typed stands for.
extension Node {
    /// The certificate `peer` proved to this node: on the edge of its connection, or in an end-to-end session.
    public func certificate(of peer: Address) -> MembershipCertificate? {
        if peer == address { return edgeSecurity?.credentials.certificate }
        if let connection = table.connection(to: peer), let certificate = securedEdge(connection.edgeID)?.peerCertificate {
            return certificate
        }
        return endToEnd?.certificate(of: peer)
    }

    /// `peer`'s certificate name if the node knows it, else its short address.
    public func displayName(of peer: Address) -> String {
        certificate(of: peer)?.name ?? peer.short
    }

    /// What `target` stands for: a ring address (40 hex digits), a virtual IP (secured networks: the ring
    /// address follows from it), or a member's certificate name. Calls `completion` on the node's executor.
    public func resolve(_ target: String, completion: @escaping (Result<ResolvedTarget, NameLookupFailure>) -> Void) {
        let text = target.trimmingCharacters(in: .whitespaces)
        if text.count == Address.byteCount * 2, let peer = Address(hex: text) {
            let certificate = certificate(of: peer)
            return completion(.success(ResolvedTarget(address: peer, name: certificate?.name,
                                                      virtualIPs: certificate?.virtualIPs ?? [])))
        }
        if let ip = VirtualIP(text) {
            guard let network = edgeSecurity?.credentials.authority.network else {
                return completion(.failure(.virtualIPWithoutSecurity(text)))
            }
            let peer = Address.forVirtualIP(ip, network: network)
            return completion(.success(ResolvedTarget(address: peer, name: certificate(of: peer)?.name, virtualIPs: [ip])))
        }
        guard (1...MembershipCertificate.maximumNameLength).contains(text.utf8.count) else {
            return completion(.failure(.notATarget(text)))
        }
        if let known = knownCertificate(named: text) {
            return completion(.success(ResolvedTarget(address: known.entitledAddress, name: known.name,
                                                      virtualIPs: known.virtualIPs)))
        }
        completion(.failure(.unknownName(text)))
    }

    /// A certificate with `name` this node holds: its own, a connected peer's or an end-to-end peer's.
    func knownCertificate(named name: String) -> MembershipCertificate? {
        let wanted = name.lowercased()
        if let own = edgeSecurity?.credentials.certificate, own.name.lowercased() == wanted { return own }
        for connection in table.connections {
            if let certificate = securedEdge(connection.edgeID)?.peerCertificate, certificate.name.lowercased() == wanted {
                return certificate
            }
        }
        return endToEnd?.certificate(named: wanted)
    }
}

/// A node someone named, as far as this node knows it.
public struct ResolvedTarget: Sendable, Equatable {
    public var address: Address
    /// Its certificate name, if known.
    public var name: String?
    public var virtualIPs: [VirtualIP]
}

/// Why a name, virtual IP or address does not lead to a node.
public enum NameLookupFailure: Error, Equatable, Sendable, CustomStringConvertible {
    case notATarget(String)
    case virtualIPWithoutSecurity(String)
    case unknownName(String)

    public var description: String {
        switch self {
        case .notATarget(let text):
            return "'\(text)' is neither a member name, a virtual IP nor a 40-hex-digit ring address"
        case .virtualIPWithoutSecurity(let text):
            return "\(text) is a virtual IP, but this node runs without security: virtual IPs need certificates"
        case .unknownName(let name): return "no member named '\(name)' is known"
        }
    }
}
