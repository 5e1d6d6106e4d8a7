import NIOCore

/// A node's interface on the virtual network: it carries out `VirtualNetwork`'s decisions between the node
/// and a `PacketDevice`. It takes over the node's `onDeliver` and `onRoutingError`.
///
/// Confined to the node's executor.
public final class VirtualInterface {
    public let node: Node
    public let device: any PacketDevice
    public private(set) var network: VirtualNetwork

    /// Fails when the node is not secured or its certificate names no virtual IP: the node's IP and the right
    /// to send from it come from its membership certificate.
    public init(node: Node, device: any PacketDevice, settings: VirtualNetwork.Settings) throws(VirtualNetworkError) {
        guard let credentials = node.config.security.credentials else { throw .notSecured }
        guard let ip = credentials.certificate.virtualIPs.first else {
            throw .noVirtualIP(certificate: credentials.certificate.name)
        }
        guard settings.prefix.contains(ip) else { throw .outsidePrefix(ip: ip, prefix: settings.prefix) }
        self.node = node
        self.device = device
        self.network = VirtualNetwork(settings: settings, localIP: ip, networkID: credentials.authority.network)
        node.onDeliver = { [weak self] header, payload in self?.receiveFromOverlay(header, payload) }
        node.onRoutingError = { [weak self] error in self?.undeliverable(error) }
        node.virtualInterface = self
    }

    public var localIP: VirtualIP { network.localIP }

    /// One IP packet the host sent into the device.
    public func receiveFromDevice(_ packet: ByteBuffer) {
        carryOut(network.fromDevice(packet, now: node.now))
    }

    /// A packet the device read but could not hand up; `reason` names the drop counter (after `vnet_`).
    public func deviceDropped(_ reason: String) {
        node.stats.drop(.virtualNetwork(reason))
    }

    private func receiveFromOverlay(_ header: RoutedHeader, _ payload: ByteBuffer) {
        guard header.payloadType == .data, header.mode == .exact else { return }
        carryOut(network.fromOverlay(payload, source: header.source, now: node.now))
    }

    private func undeliverable(_ error: RoutingError) {
        if let message = network.undeliverable(error, now: node.now) { device.write(message) }
    }

    private func carryOut(_ action: VirtualNetwork.Action) {
        switch action {
        case .send(let packet, let destination): node.send(data: packet, to: destination)
        case .write(let packet): device.write(packet)
        case .drop(let reason): node.stats.drop(.virtualNetwork(reason))
        }
    }
}

/// Why a node cannot have a virtual network interface.
public enum VirtualNetworkError: Error, Equatable, CustomStringConvertible {
    case notSecured
    case noVirtualIP(certificate: String)
    case outsidePrefix(ip: VirtualIP, prefix: VirtualPrefix)

    public var description: String {
        switch self {
        case .notSecured:
            return "the virtual network needs a secured node: its IP and the right to send from it come from its "
                + "membership certificate (add a 'security' section; see docs/security.md)"
        case .noVirtualIP(let name):
            return "the certificate of '\(name)' names no virtual IP (a router-only node); issue one with "
                + "`wow cert issue --vip 100.64.0.N` to join the virtual network"
        case .outsidePrefix(let ip, let prefix):
            return "the certificate's virtual IP \(ip) is outside the virtual network \(prefix); set "
                + "'virtual_network.prefix' to the network it belongs to"
        }
    }
}
