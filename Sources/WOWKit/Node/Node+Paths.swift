/// Running the `PathWatch`: which edges carry sends without answers, its checks, probes and failovers.
extension Node {
    /// The node sent on edge `id`, which was answering: the path watch counts from now. The first check comes
    /// when the edge could first need a probe: most edges answer before.
    func noteUnanswered(_ id: EdgeID) {
        let now = scheduler.now
        edges[id]?.unansweredSince = now
        if timers[.pathCheck] == nil { arm(.pathCheck, after: pathWatch.firstProbeAfter) }
    }

    /// One `PathWatch` check over every connection: probes, failovers, and the next check while any path
    /// is unanswered. Runs often on a busy node, so it first looks for a path the watch must act on, without
    /// gathering anything.
    func checkPaths() {
        let now = scheduler.now
        var anyUnanswered = false
        var anyDue = false
        for connection in table.connections {
            guard let since = edges.unansweredSince(connection.edgeID) else { continue }
            anyUnanswered = true
            if pathWatch.mayAct(unansweredSince: since, at: now) {
                anyDue = true
                break
            }
        }
        guard anyDue else {
            if anyUnanswered { arm(.pathCheck, after: pathWatch.checkInterval) }
            return
        }
        let paths = table.connections.map { connection in
            let record = edges[connection.edgeID]
            return PathWatch.Path(connection: connection, unansweredSince: record?.unansweredSince,
                                  probedAt: record?.probedAt, isLinking: linker.attempt(to: connection.address) != nil)
        }
        let (decisions, watching) = pathWatch.check(paths, schemes: Set(listeners.map(\.scheme)), at: now)
        for decision in decisions {
            switch decision {
            case .probe(_, let edge):
                stats.pathProbes += 1
                send(.ping(nonce: UInt64(bitPattern: now.nanoseconds)), on: edge)
                edges[edge]?.probedAt = now
                // A probe awaits its answer, even on an edge that carried no traffic (a failover's neighbours).
                if edges.unansweredSince(edge) == nil { noteUnanswered(edge) }
            case .failover(let peer, let from, let uris, let through, let silentFor):
                failOver(peer, from: from, to: uris, through: through, silentFor: silentFor)
            }
        }
        if watching { arm(.pathCheck, after: pathWatch.checkInterval) }
    }

    /// A failed-over connection's turn to try the path it left (`PathWatch.retryLeftPath`): both ends link at
    /// once over that transport only, so a peer behind a NAT punches toward us too.
    func retryLeftPath(for connection: Connection, at now: Timestamp) {
        guard let uri = pathWatch.retryLeftPath(connection, isLinking: linker.attempt(to: connection.address) != nil,
                                                at: now) else { return }
        logger.debug("trying the path the connection left", metadata: ["peer": "\(connection.address.short)", "uri": "\(uri.text)"])
        relinkBothWays(connection.address, uris: [uri], offering: [uri.scheme])
    }

    private func failOver(_ peer: Address, from edge: EdgeID, to uris: [TransportURI], through: EdgeID?,
                          silentFor: Duration) {
        stats.failovers += 1
        logger.info("path silent; moving the connection to another path", metadata: [
            "peer": "\(peer.short)", "from": "\(edges[edge]?.edge.remoteURI.text ?? "?")",
            "silent_ms": "\(Int(silentFor.seconds * 1000))", "trying": "\(uris.map(\.text).joined(separator: ", "))",
            "ask_back_via": "\(through.flatMap { table.peer(on: $0)?.short } ?? "-")"])
        if let through {
            relinkBothWays(peer, uris: uris, through: through)
        } else if !uris.isEmpty {
            startRelink(AttemptStart(token: random.next(), intent: .relink, target: peer, uris: uris,
                                     purpose: .own(connectToken: nil)))
        }
    }
}
