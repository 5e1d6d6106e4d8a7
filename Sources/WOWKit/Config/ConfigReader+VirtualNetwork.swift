import Yams

extension ConfigReader {
    /// The `virtual_network` section: the TUN device's name, the network it carries, its MTU, offloads. The node's IP
    /// is its certificate's first virtual IP, so the section needs a secured node with one.
    func virtualNetwork(_ sectionField: Field,
                        security: NodeConfig.Security) throws(ConfigError) -> VirtualNetwork.Settings {
        let section = try fields(of: sectionField.value, field: sectionField, allowed: ["device", "prefix", "mtu", "offload"])
        var settings = VirtualNetwork.Settings()
        if let field = section.field("device"), !ConfigReader.isNull(field.value) {
            let name = try string(field)
            let allowed = name.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || [UInt8(ascii: "-"), UInt8(ascii: "_")].contains(byte)
            }
            guard (1...15).contains(name.utf8.count), allowed else {
                throw error(at: field, "'\(name)' is not a usable device name: give 1 to 15 letters, digits, '-' or "
                                + "'_' (Linux interface names), e.g. 'device: wow0'")
            }
            settings.deviceName = name
        }
        if let field = section.field("prefix"), !ConfigReader.isNull(field.value) {
            let text = try string(field)
            guard let prefix = VirtualPrefix(text) else {
                throw error(at: field, "'\(text)' is not an IPv4 network: write address/length with the host bits "
                                + "zero, e.g. 'prefix: 100.64.0.0/10'")
            }
            settings.prefix = prefix
        }
        if let mtu = try integer(section, "mtu", in: VirtualNetwork.mtuRange, unit: "bytes") {
            settings.mtu = mtu
        }
        if let field = section.field("offload"), !ConfigReader.isNull(field.value) {
            settings.offload = try boolean(field)
        }
        guard case .secured(let secured) = security else {
            throw error(at: sectionField, VirtualNetworkError.notSecured.description)
        }
        let certificate = secured.credentials.certificate
        guard let ip = certificate.virtualIPs.first else {
            throw error(at: sectionField, VirtualNetworkError.noVirtualIP(certificate: certificate.name).description)
        }
        guard settings.prefix.contains(ip) else {
            let at = section.field("prefix") ?? sectionField
            throw error(at: at, VirtualNetworkError.outsidePrefix(ip: ip, prefix: settings.prefix).description)
        }
        return settings
    }

    /// Reads the credential file named under `field` as `kind` and decodes it.
}
