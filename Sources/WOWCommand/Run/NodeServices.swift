import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import WOWKit
import Plugins

/// The running node as a service of `wow run`'s service group (swift-service-lifecycle): it runs until the
/// group shuts down gracefully (SIGTERM or SIGINT), then tells its peers goodbye and closes its transports,
/// control socket and metrics endpoint, in that order (`NodeRuntime.shutdown`).
struct NodeService: Service {
    let runtime: NodeRuntime

    func run() async throws {
        // Returns when graceful shutdown begins; throws if the task is cancelled instead. Either way: stop.
        try? await gracefulShutdown()
        print("wow: shutting down")
        runtime.shutdown()
    }
}

/// Rereads the config file on SIGHUP and applies what is safe while the node runs: renewed credentials (a new
/// certificate or key for the same address and network) and the revocation list. Anything else that changed
/// is named in a warning: it takes a restart.
struct ReloadService: Service {
    let configPath: String
    let running: NodeConfig
    let runtime: NodeRuntime
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        let fresh: NodeConfig
        do {
            fresh = try NodeConfig(contentsOfFile: configPath, defaultOverlords: PluginCatalog.defaultOverlordNames)
        } catch {
            logger.error("SIGHUP: the config cannot be used; the node keeps running as it was",
                         metadata: ["error": "\(error.description)"])
            return
        }
        let restartNeeded = Self.changesNeedingRestart(from: running, to: fresh)
        if !restartNeeded.isEmpty {
            logger.warning("SIGHUP: these changes take a restart; the node keeps its running values",
                           metadata: ["changed": "\(restartNeeded.joined(separator: ", "))"])
        }
        guard case .secured(let secured) = fresh.security else { return }
        do {
            try runtime.withNode { node in try node.updateCredentials(secured.credentials) }
            logger.notice("SIGHUP: credentials reloaded", metadata: [
                "certificate": "\(secured.credentials.certificate.fingerprint.short)",
                "revoked": "\(secured.credentials.revoked.count)"])
        } catch {
            logger.error("SIGHUP: the new credentials cannot be used while the node runs",
                         metadata: ["error": "\(error)"])
        }
    }

    /// The parts of the config a running node cannot change, by key.
    static func changesNeedingRestart(from old: NodeConfig, to new: NodeConfig) -> [String] {
        var changed: [String] = []
        func entries(_ list: [NodeConfig.PluginEntry]) -> [String] { list.map { "\($0.name) \($0.settings)" } }
        if old.name != new.name { changed.append("node.name") }
        if old.resolvedAddress != new.resolvedAddress { changed.append("node.address") }
        if entries(old.transports) != entries(new.transports) { changed.append("transports") }
        if entries(old.overlords) != entries(new.overlords) { changed.append("overlords") }
        if old.bootstrap != new.bootstrap { changed.append("bootstrap") }
        if old.linking != new.linking { changed.append("linking") }
        if old.liveness != new.liveness { changed.append("liveness") }
        if old.maximumConnections != new.maximumConnections || old.sharedNeighboursPerSide != new.sharedNeighboursPerSide {
            changed.append("limits")
        }
        switch (old.security, new.security) {
        case (.secured(let a), .secured(let b)):
            if a.credentials.authority != b.credentials.authority { changed.append("security.ca") }
            if a.channel != b.channel { changed.append("security.rekey_after_s") }
            if a.revocationFile != b.revocationFile { changed.append("security.revoked (the file's path)") }
        case (.secured, _), (_, .secured): changed.append("security")
        default: break
        }
        return changed
    }
}
