/// How the NAT in front of a simulated `memory` host treats its packets, as real Linux and home NATs do.
///
/// Outbound packets of a NATed host leave from its NAT's public host id and a mapped port; inbound packets
/// reach the host only through a live mapping and only from the remotes the NAT's filter lets in. Mappings
/// and filter entries expire after the network's `natMappingTimeout` without outbound traffic through them;
/// each outbound packet refreshes them.
public enum NATBehaviour: String, CaseIterable, Sendable, Codable {
    /// No NAT: the host is reachable at its own URI by anyone, and others see its packets come from there.
    case open = "public"
    /// Endpoint-independent mapping and filtering: one public port per internal endpoint; once it exists
    /// (the host sent something anywhere), anyone may send to it.
    case fullCone = "full-cone"
    /// Endpoint-independent mapping, address-dependent filtering: one public port per internal endpoint;
    /// inbound only from remote hosts (any port) the internal endpoint has sent to.
    case restricted
    /// Endpoint-independent mapping, address-and-port-dependent filtering: one public port per internal
    /// endpoint; inbound only from the remote host:port pairs the internal endpoint has sent to.
    case portRestricted = "port-restricted"
    /// Endpoint-dependent mapping: a new public port for every remote host:port the internal endpoint sends
    /// to; inbound on that port only from that remote. Hole punching fails against anything but a full cone.
    case symmetric
    /// A firewall that drops all UDP: nothing goes in or out (such a host needs a relay).
    case udpBlocked = "udp-blocked"
}
