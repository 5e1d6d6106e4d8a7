/// What a link request or a Connect-To-Me asks for: a connection that serves a type, or moving the connection
/// the two nodes hold to the request's edge (`relink`: a NAT rebinding, a relayed connection going direct),
/// which adds no type. On the wire both travel in the type field, `relink` under its reserved name
/// (docs/protocol.md), so the wire format is what it was; in the code a relink is never a connection type.
public enum LinkIntent: Hashable, Sendable, CustomStringConvertible {
    /// A connection serving `type`.
    case connect(ConnectionType)
    /// Move the existing connection to the request's edge.
    case relink

    /// The type field's value for a relink.
    static let relinkName: ConnectionType = "relink"

    /// The intent a type field carries.
    public init(wire type: ConnectionType) { self = type == LinkIntent.relinkName ? .relink : .connect(type) }

    /// The type field that carries this intent.
    public var wire: ConnectionType {
        switch self {
        case .connect(let type): return type
        case .relink: return LinkIntent.relinkName
        }
    }

    /// The type a connection made for this intent serves; nil for a relink.
    public var connectionType: ConnectionType? {
        if case .connect(let type) = self { return type }
        return nil
    }

    public var description: String { wire.name }
}

extension LinkRequest {
    /// What the request asks for.
    public var intent: LinkIntent { LinkIntent(wire: type) }

    public init(token: UInt64, intent: LinkIntent, requester: NodeInfo, target: Address?, observedURI: TransportURI) {
        self.init(token: token, type: intent.wire, requester: requester, target: target, observedURI: observedURI)
    }
}

extension ConnectToMe {
    /// What the CTM asks for.
    public var intent: LinkIntent { LinkIntent(wire: type) }

    public init(token: UInt64, intent: LinkIntent, requester: NodeInfo, gateway: Address?) {
        self.init(token: token, type: intent.wire, requester: requester, gateway: gateway)
    }
}

extension Linker.Attempt {
    /// What the attempt's requests ask for.
    public var intent: LinkIntent { LinkIntent(wire: type) }
}
