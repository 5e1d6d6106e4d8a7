import ArgumentParser
import Foundation
import WOWKit

/// `wow ping`: overlay echoes through a running node, with the path each took.
struct PingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Ping a member through the overlay: round trip, hops and path (direct, relayed, routed) per reply.",
        discussion: """
            Asks the running node (over its control socket) to send overlay echo requests to TARGET: a member's \
            certificate name, a virtual IP, or a 40-hex-digit ring address. Exit status 0 when a reply came \
            (with --until-direct: when a reply came over a direct connection), else 1.
            """
    )

    @Argument(help: "A member name, virtual IP or ring address.")
    var target: String

    @Option(name: [.customShort("c"), .long], help: "Echoes to send (with --until-direct: at most this many; default 30).")
    var count: Int?

    @Option(name: [.customShort("i"), .long], help: "Seconds between echoes.")
    var interval: Double = 1

    @Option(name: [.customShort("W"), .long], help: "Seconds to wait for each reply.")
    var timeout: Double = 2

    @Flag(help: "Keep pinging until a reply comes over a direct connection, and say when.")
    var untilDirect = false

    @OptionGroup var node: NodeControlOptions

    @Flag(help: "Print one JSON object per echo.")
    var json = false

    func validate() throws {
        if let count, !(1...1_000_000).contains(count) { throw ValidationError("--count must be 1...1000000, got \(count)") }
        guard interval >= 0.01 && interval <= 3600 else { throw ValidationError("--interval must be 0.01...3600 seconds, got \(interval)") }
        guard timeout >= 0.01 && timeout <= 60 else { throw ValidationError("--timeout must be 0.01...60 seconds, got \(timeout)") }
        guard !target.contains(where: \.isWhitespace), !target.isEmpty else {
            throw ValidationError("the target is a name, virtual IP or address without spaces")
        }
    }

    func run() throws {
        let path = node.path
        let total = count ?? (untilDirect ? 30 : 4)
        let milliseconds = Int((timeout * 1000).rounded())
        var received: [Double] = []
        var firstDirect: (sequence: Int, after: Double)?
        let started = Date()
        for sequence in 1...total {
            let sentAt = Date()
            let echoed = try request("ping \(target) \(sequence) \(milliseconds)", path: path, timeout: timeout)
            if sequence == 1 && !json {
                let ips = echoed.target.virtual_ips.isEmpty ? "" : " (\(echoed.target.virtual_ips.joined(separator: ", ")))"
                print("PING \(echoed.target.name ?? target)\(ips) at \(echoed.target.address.prefix(16)): overlay echoes")
            }
            if json {
                print(String(decoding: try JSONEncoder().encode(echoed), as: UTF8.self))
            } else {
                print(Self.line(for: echoed, name: echoed.target.name ?? target))
            }
            if let rtt = echoed.rtt_ms {
                received.append(rtt)
                if echoed.direct == true && firstDirect == nil {
                    firstDirect = (sequence, Date().timeIntervalSince(started))
                }
            }
            if untilDirect, firstDirect != nil { break }
            if sequence < total {
                let wait = interval - Date().timeIntervalSince(sentAt)
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            }
        }
        let sent = untilDirect ? (firstDirect?.sequence ?? total) : total
        if !json {
            print(Self.summary(target: target, sent: sent, received: received))
            if untilDirect {
                print(firstDirect.map { String(format: "direct after %.1f s (echo %d)", $0.after, $0.sequence) }
                      ?? "no direct connection after \(sent) echoes")
            }
        }
        let succeeded = untilDirect ? firstDirect != nil : !received.isEmpty
        if !succeeded { throw ExitCode(1) }
    }

    /// One echo through the node; a command error (unknown name, no node) ends the run with its message.
    private func request(_ command: String, path: String, timeout: Double) throws -> ControlAnswer.Echoed {
        let answer: Data
        do {
            answer = try ControlClient.request(command, path: path, timeoutSeconds: Int(timeout.rounded(.up)) + 5)
        } catch {
            throw CommandFailure(description: "\(error)")
        }
        if let object = try? JSONSerialization.jsonObject(with: answer) as? [String: Any], let error = object["error"] {
            throw CommandFailure(description: "\(error)")
        }
        do {
            return try JSONDecoder().decode(ControlAnswer.Echoed.self, from: answer)
        } catch {
            throw CommandFailure(description: "unexpected answer from \(path): \(error)")
        }
    }

    static func line(for echoed: ControlAnswer.Echoed, name: String) -> String {
        guard let rtt = echoed.rtt_ms else {
            return "no reply from \(name): seq=\(echoed.sequence) \(echoed.failure ?? "")"
        }
        return "reply from \(name): seq=\(echoed.sequence) time=\(String(format: "%.2f", rtt)) ms "
            + "hops=\(echoed.hops_there ?? 0)/\(echoed.hops_back ?? 0) path: \(echoed.path ?? "-")"
    }

    static func summary(target: String, sent: Int, received: [Double]) -> String {
        let loss = sent == 0 ? 0 : Double(sent - received.count) * 100 / Double(sent)
        var text = "--- \(target) overlay ping: \(sent) sent, \(received.count) received, \(String(format: "%.0f", loss))% loss"
        if let low = received.min(), let high = received.max() {
            text += String(format: "; rtt min/avg/max %.2f/%.2f/%.2f ms", low, received.reduce(0, +) / Double(received.count), high)
        }
        return text
    }
}
