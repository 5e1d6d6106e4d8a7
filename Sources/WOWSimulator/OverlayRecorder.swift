import WOWKit

/// One thing that happened to an overlay, as a viewer draws it: a node joining, becoming routable, holding its
/// far links or leaving; one of its connections appearing, changing (types, or path: a relayed connection
/// turning direct) or going; or a note on the run's phase.
public struct OverlayEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `detail` says how the node is reached (its transports, or its NAT in the simulator).
        case joined(name: String, detail: String)
        case routable
        case farLinks
        /// The node crashed or stopped: its own connections are gone with it.
        case left
        /// The node now holds a connection to `peer` with these local types over `transport` (through the
        /// forwarder `via` when relayed). `pathSwitch` when the connection existed and changed transport or
        /// forwarder.
        case linked(peer: Address, types: [String], transport: String, via: Address?, pathSwitch: Bool)
        case unlinked(peer: Address)
        case note(String)
    }

    /// Seconds since the run started (virtual time in the simulator, wall time elsewhere).
    public var seconds: Double
    /// The node it happened to; nil for a note.
    public var node: Address?
    public var kind: Kind

    public init(seconds: Double, node: Address?, kind: Kind) {
        self.seconds = seconds
        self.node = node
        self.kind = kind
    }
}

/// Turns what nodes show of themselves into `OverlayEvent`s: it remembers each node's connections and, each
/// time it is shown a node again (after a table change, or on a timer), emits what differs. One recorder
/// serves the simulator (`OverlaySimulation.recorder`, on virtual time) and the live views of `wow demo` and
/// `wow run` (sampled on their event loop).
///
/// Not thread-safe: confined to the thread or event loop that runs the nodes it is shown.
public final class OverlayRecorder {
    /// What a node's connection to one peer looks like from that node.
    struct Link: Equatable {
        var types: [String]
        var transport: String
        var via: Address?
    }

    private var links: [Address: [Address: Link]] = [:]
    private var known: Set<Address> = []
    private let emit: (OverlayEvent) -> Void

    /// `emit` is called for each event, on the caller's thread, in order.
    public init(emit: @escaping (OverlayEvent) -> Void) {
        self.emit = emit
    }

    /// Whether `joined` was recorded for this node (and `left` not since).
    public func isKnown(_ node: Address) -> Bool { known.contains(node) }

    public func joined(_ node: Address, name: String, detail: String, at seconds: Double) {
        known.insert(node)
        emit(OverlayEvent(seconds: seconds, node: node, kind: .joined(name: name, detail: detail)))
    }

    public func left(_ node: Address, at seconds: Double) {
        known.remove(node)
        links[node] = nil
        emit(OverlayEvent(seconds: seconds, node: node, kind: .left))
    }

    public func routable(_ node: Address, at seconds: Double) {
        emit(OverlayEvent(seconds: seconds, node: node, kind: .routable))
    }

    public func farLinks(_ node: Address, at seconds: Double) {
        emit(OverlayEvent(seconds: seconds, node: node, kind: .farLinks))
    }

    public func note(_ text: String, at seconds: Double) {
        emit(OverlayEvent(seconds: seconds, node: nil, kind: .note(text)))
    }

    /// Emits what changed in `node`'s connections since it was last observed. Call on the node's executor.
    public func observe(_ node: Node, at seconds: Double) {
        let before = links[node.address] ?? [:]
        var now: [Address: Link] = [:]
        // In the table's order, so a seeded simulation records the same events in the same order.
        for connection in node.table.connections {
            let link = Link(types: connection.localTypes.map(\.name).sorted(), transport: connection.transport,
                            via: Self.forwarder(of: connection))
            now[connection.address] = link
            let previous = before[connection.address]
            guard previous != link else { continue }
            let switched = previous.map { $0.transport != link.transport || $0.via != link.via } ?? false
            emit(OverlayEvent(seconds: seconds, node: node.address,
                              kind: .linked(peer: connection.address, types: link.types, transport: link.transport,
                                            via: link.via, pathSwitch: switched)))
        }
        for peer in before.keys.sorted() where now[peer] == nil {
            emit(OverlayEvent(seconds: seconds, node: node.address, kind: .unlinked(peer: peer)))
        }
        links[node.address] = now
    }

    /// The forwarder a relayed connection goes through (`relay://<forwarder>/<target>`); nil when direct.
    static func forwarder(of connection: Connection) -> Address? {
        guard connection.remoteURI.scheme == "relay" else { return nil }
        return Address(hex: String(connection.remoteURI.rest.prefix { $0 != "/" }))
    }
}
