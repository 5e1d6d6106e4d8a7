import ArgumentParser
import Foundation

/// `wow bench crypto`: the secure channel's handshake and sealing costs, on one thread, against a memcpy
/// baseline and the raw AEADs of swift-crypto.
struct CryptoBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "Time secure-channel handshakes and frame sealing/opening against memcpy, ChaChaPoly and AES.GCM.",
        discussion: """
            Everything runs on one thread. Handshakes are complete: init, response, and the first sealed frame
            opened at the responder, with fresh system-random X25519 keys as a real node uses. Sealing and
            opening go through SecureChannel (framing and replay window included; the plaintext has no room around it, so each frame is a new buffer); the baseline
            copies the same plaintext into a new ByteBuffer of the frame's size, and the raw AEAD rows call
            swift-crypto's ChaChaPoly and AES.GCM directly with the same 14-byte associated data. Throughput is
            of plaintext bytes. Takes about 17 x --seconds with the default sizes.
            """
    )

    @Option(help: "Seconds of timed work per measurement, in (0, 60].")
    var seconds = 1.0

    @Option(help: "Plaintext sizes in bytes, comma-separated, each in 0...65000.")
    var sizes = "64,512,1400,8192"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 60 else { throw ValidationError("--seconds must be in (0, 60], got \(seconds)") }
        _ = try parsedSizes()
    }

    func parsedSizes() throws -> [Int] {
        let parts = sizes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let values = parts.compactMap { Int($0) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ (0...65_000).contains($0) }) else {
            throw ValidationError("--sizes '\(sizes)': expected comma-separated byte counts in 0...65000, e.g. 64,512,1400")
        }
        return values
    }

    func run() throws {
        print(try output())
    }

    /// Runs the benchmark and renders what `run` prints.
    func output() throws -> String {
        let report = try CryptoBenchmark(seconds: seconds, sizes: parsedSizes()).run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return String(decoding: try encoder.encode(report), as: UTF8.self)
        }
        return Self.table(report)
    }

    static func table(_ report: CryptoBenchReport) -> String {
        func f(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
        func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
            let padding = String(repeating: " ", count: max(0, width - text.count))
            return left ? text + padding : padding + text
        }
        var lines: [String] = []
        lines.append("WOW crypto benchmark: one thread, \(f(report.seconds_per_measurement, 2)) s per measurement, \(report.build) build")
        if report.build != "release" {
            lines.append("  (a debug build: run `swift run -c release wow bench crypto` for real numbers)")
        }
        let h = report.handshake
        lines.append("")
        lines.append("Handshake (init -> response -> first sealed frame opened), \(h.count) handshakes:")
        lines.append("  mean \(f(h.mean_us, 1)) us   p50 \(f(h.p50_us, 1)) us   p99 \(f(h.p99_us, 1)) us   "
                     + "\(f(h.handshakes_per_s, 0)) handshakes/s")
        lines.append("")
        lines.append(pad("size", 6) + "  " + pad("operation", 26, left: true) + pad("packets/s", 13) + pad("Gbit/s", 9)
                     + pad("ns/packet", 11) + pad("x memcpy", 10))
        for size in report.sizes {
            for (index, row) in size.measurements.enumerated() {
                lines.append(pad(index == 0 ? "\(size.bytes) B" : "", 6) + "  " + pad(row.name, 26, left: true)
                             + pad(f(row.packets_per_s, 0), 13) + pad(f(row.gbit_per_s, 2), 9)
                             + pad(f(row.ns_per_packet, 0), 11) + pad(f(row.time_vs_memcpy, 1), 10))
            }
            lines.append(pad("", 8) + "channel seal+open costs \(f(size.channel_vs_raw_aead, 2))x raw AES.GCM seal+open (the AEAD it uses); "
                         + "AES.GCM seal+open is \(f(size.aesgcm_speedup_over_chachapoly, 2))x as fast as ChaChaPoly")
        }
        lines.append("")
        lines.append("x memcpy: time per packet over the memcpy baseline's. Faster AEAD here (seal+open, all sizes): "
                     + "\(report.faster_aead) (\(f(report.aesgcm_speedup_over_chachapoly_geomean, 2))x AES.GCM over ChaChaPoly, geometric mean).")
        return lines.joined(separator: "\n")
    }
}
