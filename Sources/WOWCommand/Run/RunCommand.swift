import ArgumentParser
import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import NIOCore
import Plugins
import Transports
import WOWKit

/// An error for the user, printed as is.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// `wow run`: a node over real sockets.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a node: listen on its transports, join through its bootstrap URIs, keep its links.",
        discussion: "Stops cleanly on SIGINT or SIGTERM. `wow status` asks the running node over its control socket."
    )

    @Option(help: "The node's YAML config file (see docs/config.md).")
    var config: String

    @Option(help: "Control socket path (default: $XDG_RUNTIME_DIR or /tmp, wow-<node name>.sock).")
    var control: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @OptionGroup var webOptions: WebOptions

    @Option(help: "Serve Prometheus metrics at http://ADDRESS:PORT/metrics, on a loopback address only (e.g. 127.0.0.1:9464).")
    var metrics: String?

    /// `--metrics` parsed; nil without it. Only loopback: the metrics say who the node talks to.
    func metricsAddress() throws -> SocketAddress? {
        try metrics.map {
            try Self.loopbackAddress($0, flag: "--metrics", example: "127.0.0.1:9464",
                                     why: "put a reverse proxy or a Prometheus agent on the host to expose the metrics further")
        }
    }

    /// `ADDRESS:PORT` (or `localhost:PORT`) for a service of this host only; the error names the flag and why.
    static func loopbackAddress(_ text: String, flag: String, example: String, why: String) throws -> SocketAddress {
        // `localhost` is the one host name taken: it means loopback on every host, so needs no DNS lookup.
        let literal = text.hasPrefix("localhost:") ? "127.0.0.1" + text.dropFirst("localhost".count) : text
        let endpoint: IPEndpoint
        do {
            endpoint = try IPEndpoint(parsing: literal)
        } catch {
            throw ValidationError("\(flag) '\(text)': give ADDRESS:PORT, e.g. \(example) (\(error.reason))")
        }
        guard endpoint.isLoopback else {
            throw ValidationError("\(flag) '\(text)': listen on a loopback address (127.0.0.0/8 or ::1); \(why)")
        }
        return endpoint.address
    }

    @Option(help: "Answer DNS for member names (NAME.<domain>, e.g. beta.wow) at ADDRESS:PORT, a loopback address (e.g. 127.0.0.1:53); secured nodes only.")
    var dns: String?

    @Option(help: "The domain member names are answered under (with --dns).")
    var dnsDomain = "wow"

    /// `--dns` parsed; nil without it. Only loopback: the resolver serves this host.
    func dnsAddress() throws -> SocketAddress? {
        try dns.map { try Self.loopbackAddress($0, flag: "--dns", example: "127.0.0.1:53", why: "the resolver serves this host") }
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)': use trace, debug, info, notice, warning, error or critical")
        }
        _ = try metricsAddress()
        _ = try webOptions.address()
        _ = try dnsAddress()
        let labels = dnsDomain.split(separator: ".", omittingEmptySubsequences: false)
        guard !dnsDomain.isEmpty, dnsDomain.utf8.count <= 200, labels.allSatisfy({ label in
            (1...63).contains(label.count) && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        }) else {
            throw ValidationError("--dns-domain '\(dnsDomain)': give a domain of letters, digits and '-', labels separated by '.', e.g. wow or corp.wow")
        }
    }

    func run() throws {
        PacketMemory.tune()
        let nodeConfig: NodeConfig
        do {
            nodeConfig = try NodeConfig(contentsOfFile: config, defaultOverlords: PluginCatalog.defaultOverlordNames)
        } catch {
            throw CommandFailure(description: error.description)
        }
        if case .unspecified = nodeConfig.security {
            throw CommandFailure(description: Self.missingSecurityMessage(config: config))
        }
        let registries = WOW.registries()
        do {
            try nodeConfig.validate(transports: registries.transports, overlords: registries.overlords)
        } catch {
            throw CommandFailure(description: error.description)
        }
        var logger = Logger(label: "wow.node") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        // Until the service group traps them, these signals must not kill the node half started.
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGHUP, SIG_IGN)

        if dns != nil, case .insecure = nodeConfig.security {
            throw CommandFailure(description: "--dns needs a secured node: member names come from certificates (see docs/security.md)")
        }
        let controlPath = control ?? ControlClient.defaultPath(forNode: nodeConfig.name)
        let runtime: NodeRuntime
        do {
            runtime = try NodeRuntime.start(config: nodeConfig, transports: registries.transports,
                                            overlords: registries.overlords, controlPath: controlPath, logger: logger,
                                            metricsAddress: try metricsAddress(), webAddress: try webOptions.address(),
                                            dns: try dnsAddress().map { ($0, dnsDomain) })
        } catch {
            throw CommandFailure(description: "cannot start node '\(nodeConfig.name)': \(error)")
        }
        let status = try runtime.status()
        print("wow: node \(status.name) at \(status.address)")
        print("wow: \(Self.securitySummary(nodeConfig.security))")
        print("wow: reachable at \(status.uris.joined(separator: ", "))")
        if let device = runtime.deviceName, let settings = nodeConfig.virtualNetwork,
           let certificate = nodeConfig.security.credentials?.certificate,
           case .success(let ips) = settings.localIPs(of: certificate) {
            let addresses = ips.map { ip in
                let prefix = settings.prefix(for: ip.family)
                return "\(ip)/\(prefix.length) (network \(prefix))"
            }
            print("wow: virtual network on \(device): \(addresses.joined(separator: ", ")), MTU \(settings.mtu)")
        }
        print("wow: control socket \(controlPath) (wow status --control \(controlPath))")
        if let address = runtime.metricsAddress, let ip = address.ipAddress, let port = address.port {
            print("wow: metrics at http://\(ip.contains(":") ? "[\(ip)]" : ip):\(port)/metrics")
        }
        if let web = runtime.webChannel { print(WebView.announcement(web)) }
        if let address = runtime.dnsAddress, let ip = address.ipAddress, let port = address.port {
            print("wow: member names answered as NAME.\(dnsDomain) at \(ip.contains(":") ? "[\(ip)]" : ip):\(port) (udp)")
        }
        // Under systemd or a pipe, stdout is block-buffered: the start-up lines must not wait for the exit.
        fflush(nil)  // all output streams (stdout itself is not concurrency-safe to name in Swift 6)
        // swift-service-lifecycle: SIGTERM/SIGINT shut the node down gracefully, SIGHUP reloads what it safely can.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: NodeService(runtime: runtime)),
                .init(service: ReloadService(configPath: config, running: nodeConfig, runtime: runtime, logger: logger),
                      successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        let finished = DispatchSemaphore(value: 0)
        Task {
            do {
                try await group.run()
            } catch {
                logger.error("the service group failed", metadata: ["error": "\(error)"])
            }
            finished.signal()
        }
        // `wow run` is a synchronous command (WOW.main is synchronous for plugin builds); its thread waits.
        finished.wait()
    }

    /// Why `wow run` refuses a config without a `security` section, and what to write instead.
    static func missingSecurityMessage(config path: String) -> String {
        "\(path) has no 'security' section: give security.ca, .certificate and .key (create them with "
            + "`wow ca init`, `wow keygen`, `wow cert issue`; see docs/security.md), or write "
            + "`security: { insecure: true }` to run an open lab node"
    }

    /// One line on how the node proves its membership.
    static func securitySummary(_ security: NodeConfig.Security) -> String {
        switch security {
        case .unspecified, .insecure:
            return "security: insecure (no certificate; plaintext edges)"
        case .secured(let secured):
            let certificate = secured.credentials.certificate
            return "security: secured (network \(certificate.network), certificate \(certificate.fingerprint.short)…, "
                + "expires \(CredentialIO.date(certificate.notAfter)))"
        }
    }
}
