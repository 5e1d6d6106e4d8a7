/// The NAT in front of one NATed host of a `MemoryNetwork`: its mapping table and inbound filter.
///
/// Times are virtual nanoseconds. Entries are not removed by timers: a mapping or filter entry counts as
/// alive while `now - lastOutbound <= timeout`, and expired ones are swept when the tables have doubled
/// since the last sweep, so the cost per packet stays a few dictionary operations.
struct MemoryNAT {
    /// What an outbound packet is mapped by: the internal port, plus the remote for symmetric NATs.
    private struct MappingKey: Hashable {
        var internalPort: UInt16
        var remote: MemoryEndpoint?
    }

    /// A live public port.
    private struct Binding {
        var key: MappingKey
        var lastOutbound: Int64
    }

    /// A remote an internal endpoint (by its public port) has sent to; `remotePort` is -1 when only the host
    /// matters (restricted cone).
    private struct FilterKey: Hashable {
        var publicPort: UInt16
        var remoteHost: Int
        var remotePort: Int32
    }

    static let firstPort: UInt16 = 40_000
    static let lowestPort: UInt16 = 1024

    let behaviour: NATBehaviour
    /// The NAT's id on the simulated WAN.
    let publicHost: Int
    /// The one host behind it.
    let insideHost: Int
    private let timeout: Int64
    private var mappings: [MappingKey: UInt16] = [:]
    private var bindings: [UInt16: Binding] = [:]
    private var filter: [FilterKey: Int64] = [:]
    private var nextPort: UInt16 = MemoryNAT.firstPort
    private var sweepThreshold = 1024

    init(behaviour: NATBehaviour, publicHost: Int, insideHost: Int, timeout: Int64) {
        self.behaviour = behaviour
        self.publicHost = publicHost
        self.insideHost = insideHost
        self.timeout = timeout
    }

    /// Forgets every mapping and filter entry, as a NAT that reboots (or a carrier NAT that rebinds) does.
    /// Ports are not reused right away, so the inside host's next packets leave from new public ports.
    mutating func forgetAll() {
        mappings.removeAll()
        bindings.removeAll()
        filter.removeAll()
    }

    /// Maps a packet from `internalPort` to `remote`, creating or refreshing the mapping and filter entry.
    /// Returns the public port it leaves from, or nil when the NAT lets nothing out.
    mutating func translateOutbound(from internalPort: UInt16, to remote: MemoryEndpoint, now: Int64) -> UInt16? {
        let key: MappingKey
        switch behaviour {
        case .open, .udpBlocked:
            return nil
        case .symmetric:
            key = MappingKey(internalPort: internalPort, remote: remote)
        case .fullCone, .restricted, .portRestricted:
            key = MappingKey(internalPort: internalPort, remote: nil)
        }
        let publicPort: UInt16
        if let port = mappings[key], let binding = bindings[port], now - binding.lastOutbound <= timeout {
            publicPort = port
            bindings[port]?.lastOutbound = now
        } else {
            if let stale = mappings.removeValue(forKey: key) { bindings[stale] = nil }
            guard let port = allocatePort(now: now) else { return nil }
            publicPort = port
            mappings[key] = port
            bindings[port] = Binding(key: key, lastOutbound: now)
        }
        switch behaviour {
        case .restricted:
            filter[FilterKey(publicPort: publicPort, remoteHost: remote.host, remotePort: -1)] = now
        case .portRestricted:
            filter[FilterKey(publicPort: publicPort, remoteHost: remote.host, remotePort: Int32(remote.port))] = now
        case .open, .udpBlocked, .fullCone, .symmetric:
            break
        }
        return publicPort
    }

    /// The internal port a packet from `remote` to `publicPort` goes to, or nil when the NAT drops it.
    func translateInbound(to publicPort: UInt16, from remote: MemoryEndpoint, now: Int64) -> UInt16? {
        guard let binding = bindings[publicPort], now - binding.lastOutbound <= timeout else { return nil }
        let internalPort = binding.key.internalPort
        switch behaviour {
        case .fullCone:
            return internalPort
        case .restricted:
            return isAllowed(FilterKey(publicPort: publicPort, remoteHost: remote.host, remotePort: -1), now: now)
                ? internalPort : nil
        case .portRestricted:
            let key = FilterKey(publicPort: publicPort, remoteHost: remote.host, remotePort: Int32(remote.port))
            return isAllowed(key, now: now) ? internalPort : nil
        case .symmetric:
            return binding.key.remote == remote ? internalPort : nil
        case .open, .udpBlocked:
            return nil
        }
    }

    private func isAllowed(_ key: FilterKey, now: Int64) -> Bool {
        guard let last = filter[key] else { return false }
        return now - last <= timeout
    }

    /// The next free public port, cycling through 1024-65535; nil when all are in use.
    private mutating func allocatePort(now: Int64) -> UInt16? {
        if bindings.count + filter.count >= sweepThreshold {
            sweep(now: now)
            sweepThreshold = max(1024, 2 * (bindings.count + filter.count))
        }
        for _ in 0...(Int(UInt16.max) - Int(MemoryNAT.lowestPort)) {
            let port = nextPort
            nextPort = nextPort == .max ? MemoryNAT.lowestPort : nextPort + 1
            if let binding = bindings[port] {
                guard now - binding.lastOutbound > timeout else { continue }
                // Filter entries of the expired mapping are at least as old as it, so expired too.
                if mappings[binding.key] == port { mappings[binding.key] = nil }
                bindings[port] = nil
            }
            return port
        }
        return nil
    }

    private mutating func sweep(now: Int64) {
        let timeout = self.timeout
        let expired = bindings.filter { now - $0.value.lastOutbound > timeout }
        for (port, binding) in expired {
            if mappings[binding.key] == port { mappings[binding.key] = nil }
            bindings[port] = nil
        }
        filter = filter.filter { now - $0.value <= timeout }
    }
}
