import Yams

extension ConfigReader {
    /// The `virtual_network` section: the TUN device's name, the networks it carries (IPv4, IPv6), its MTU,
    /// offloads. The node's IPs are its certificate's first IPv4 and first IPv6 address, so the section needs
    /// a secured node with one; with an IPv6 one the MTU is at least IPv6's minimum (1280, also its default).
    func virtualNetwork(_ sectionField: Field,
                        security: NodeConfig.Security) throws(ConfigError) -> VirtualNetwork.Settings {
        let section = try fields(of: sectionField.value, field: sectionField, allowed: ["device", "prefix", "ipv6_prefix", "mtu", "offload"])
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
        for (key, family, example) in [("prefix", VirtualIP.Family.v4, "100.64.0.0/10"), ("ipv6_prefix", .v6, "fd77:6f77::/48")] {
            guard let field = section.field(key), !ConfigReader.isNull(field.value) else { continue }
            let text = try string(field)
            guard let prefix = VirtualPrefix(text), prefix.family == family else {
                throw error(at: field, "'\(text)' is not an \(family == .v4 ? "IPv4" : "IPv6") network: write "
                                + "address/length with the host bits zero, e.g. '\(key): \(example)'")
            }
            if family == .v4 { settings.prefix = prefix } else { settings.ipv6Prefix = prefix }
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
        let mtuField = section.field("mtu").flatMap { ConfigReader.isNull($0.value) ? nil : $0 }
        if certificate.virtualIPs.contains(where: { $0.family == .v6 }), mtuField == nil {
            settings.mtu = max(settings.mtu, VirtualNetwork.minimumIPv6MTU)
        }
        switch settings.localIPs(of: certificate) {
        case .success: break
        case .failure(let problem):
            let at: Field
            switch problem {
            case .outsidePrefix(let ip, _): at = section.field(ip.family == .v4 ? "prefix" : "ipv6_prefix") ?? sectionField
            case .mtuBelowIPv6Minimum: at = mtuField ?? sectionField
            default: at = sectionField
            }
            throw error(at: at, problem.description)
        }
        return settings
    }

    /// Reads the credential file named under `field` as `kind` and decodes it.
}
