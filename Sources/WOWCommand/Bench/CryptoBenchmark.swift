import Crypto
import Foundation
import NIOCore
import WOWKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The measurements behind `wow bench crypto`, all on the calling thread. Each throughput measurement runs
/// batches of packets: a timed pass that seals (or copies) a batch, then a timed pass that opens it, so one
/// loop yields seal alone, open alone and their sum, without a replay window refusing reopened frames.
struct CryptoBenchmark {
    var seconds: Double
    var sizes: [Int]
    /// Packets per timed pass at `size`: enough that reading the clock costs little, few enough that the
    /// frames held between passes (at most 32 KiB) stay in cache and below malloc's trim threshold, as a
    /// node's frames do (one batch of 8 KiB frames held 1 MiB, and re-faulting those pages tripled the cost).
    static func batch(_ size: Int) -> Int { min(128, max(8, 32_768 / (size + SecureFrame.sealedOverhead))) }

    func run() throws -> CryptoBenchReport {
        let fixture = try Fixture()
        let handshake = measureHandshakes(fixture)
        var rows: [CryptoBenchReport.Size] = []
        var speedups: [Double] = []
        for size in sizes {
            let plaintext = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            let memcpy = measureCopy(plaintext)
            let channel = try measureChannel(fixture, plaintext)
            let chacha = try measureRaw(ChaChaPolyAEAD.self, plaintext)
            let aes = try measureRaw(AESGCMAEAD.self, plaintext)
            let baseline = memcpy.nanosecondsPerPacket(true)
            var measurements = [memcpy.row("memcpy", first: true, size: size, baseline: baseline)]
            for (name, timing) in [("channel", channel), ("chachapoly", chacha), ("aesgcm", aes)] {
                measurements.append(timing.row("\(name) seal", first: true, size: size, baseline: baseline))
                measurements.append(timing.row("\(name) open", first: false, size: size, baseline: baseline))
                measurements.append(timing.row("\(name) seal+open", first: nil, size: size, baseline: baseline))
            }
            let speedup = chacha.nanosecondsPerPacket(nil) / aes.nanosecondsPerPacket(nil)
            speedups.append(speedup)
            rows.append(CryptoBenchReport.Size(
                bytes: size, measurements: measurements,
                channel_vs_raw_aead: channel.nanosecondsPerPacket(nil) / aes.nanosecondsPerPacket(nil),
                aesgcm_speedup_over_chachapoly: speedup))
        }
        let geomean = exp(speedups.map { log($0) }.reduce(0, +) / Double(max(1, speedups.count)))
        let build = BenchBuild.name
        return CryptoBenchReport(seconds_per_measurement: seconds, build: build, handshake: handshake, sizes: rows,
                                 faster_aead: geomean > 1 ? "AES.GCM" : "ChaChaPoly",
                                 aesgcm_speedup_over_chachapoly_geomean: geomean)
    }

    private var budget: UInt64 { UInt64(seconds * 1e9) }

    // MARK: - Handshakes

    /// Two nodes of one network, with system-random keys as real nodes have.
    struct Fixture {
        let initiator: SecureChannel.Environment
        let responder: SecureChannel.Environment

        init() throws {
            let now = Int64(Date().timeIntervalSince1970)
            let authority = NetworkAuthorityKey.create(name: "bench", now: now)
            func member(_ name: String, _ ip: UInt32) throws -> NodeCredentials {
                try authority.member(name: name, virtualIPs: [VirtualIP(ip)], notBefore: now - 60,
                                     notAfter: now + 86_400, serial: UInt64(ip))
            }
            let settings = SecureChannel.Settings()
            initiator = SecureChannel.Environment(credentials: try member("initiator", 0x6440_0001), settings: settings,
                                                  now: .zero, unixTime: now)
            responder = SecureChannel.Environment(credentials: try member("responder", 0x6440_0002), settings: settings,
                                                  now: .zero, unixTime: now)
        }

        /// A complete handshake; the channels it leaves are established both ways.
        func handshake(random: inout SeededRandom) throws -> (initiator: SecureChannel, responder: SecureChannel) {
            var a = SecureChannel(), b = SecureChannel()
            let hello = ByteBuffer(bytes: [1, 2, 3, 4])
            let initFrame = try Self.frame(a.send(hello, initiator, random: &random))
            let response = try Self.frame(b.receive(initFrame, responder, random: &random))
            let sealed = try Self.frame(a.receive(response, initiator, random: &random))
            let opened = b.receive(sealed, responder, random: &random)
            guard opened.contains(where: { if case .deliver = $0 { return true } else { return false } }),
                  a.isEstablished, b.isEstablished else {
                throw BenchFailure("the handshake did not complete: \(opened)")
            }
            return (a, b)
        }

        static func frame(_ outputs: SecureChannel.Outputs) throws -> ByteBuffer {
            for case .transmit(let frame) in outputs { return frame }
            throw BenchFailure("expected a frame to transmit, got \(outputs)")
        }
    }

    private func measureHandshakes(_ fixture: Fixture) -> CryptoBenchReport.Handshake {
        var random = SeededRandom.fromSystem()
        var durations: [UInt64] = []
        var total: UInt64 = 0
        _ = try? fixture.handshake(random: &random)  // warm up
        while total < budget || durations.count < 10 {
            let start = Stopwatch.now()
            _ = try? fixture.handshake(random: &random)
            let elapsed = Stopwatch.now() - start
            durations.append(elapsed)
            total += elapsed
        }
        durations.sort()
        func percentile(_ p: Double) -> Double {
            Double(durations[min(durations.count - 1, Int((p * Double(durations.count)).rounded(.up)) - 1)]) / 1000
        }
        let mean = Double(total) / Double(durations.count) / 1000
        return CryptoBenchReport.Handshake(count: durations.count, mean_us: mean, p50_us: percentile(0.5),
                                           p99_us: percentile(0.99), handshakes_per_s: 1e6 / mean)
    }

    // MARK: - Throughput

    /// Packets processed and nanoseconds spent in the first and second timed pass of each batch.
    struct Timing {
        var packets = 0
        var first: UInt64 = 0
        var second: UInt64 = 0

        /// The first pass (`true`), the second (`false`), or both (`nil`).
        func nanosecondsPerPacket(_ first: Bool?) -> Double {
            let nanoseconds = first.map { $0 ? self.first : second } ?? self.first + second
            return Double(nanoseconds) / Double(max(1, packets))
        }

        func row(_ name: String, first: Bool?, size: Int, baseline: Double) -> CryptoBenchReport.Measurement {
            let perPacket = max(nanosecondsPerPacket(first), 0.001)
            let rate = 1e9 / perPacket
            return CryptoBenchReport.Measurement(name: name, packets: packets, packets_per_s: rate,
                                                 gbit_per_s: rate * Double(size) * 8 / 1e9, ns_per_packet: perPacket,
                                                 time_vs_memcpy: perPacket / max(baseline, 0.001))
        }
    }

    /// The baseline: the plaintext copied into a new buffer of the sealed frame's size.
    private func measureCopy(_ plaintext: ByteBuffer) -> Timing {
        let batch = Self.batch(plaintext.readableBytes)
        var timing = Timing()
        var copies: [ByteBuffer] = []
        copies.reserveCapacity(batch)
        var sink = 0
        let allocator = ByteBufferAllocator()
        let capacity = plaintext.readableBytes + SecureFrame.sealedOverhead
        while timing.first < budget {
            copies.removeAll(keepingCapacity: true)
            let start = Stopwatch.now()
            for _ in 0..<batch {
                var copy = allocator.buffer(capacity: capacity)
                copy.writeImmutableBuffer(plaintext)
                copies.append(copy)
            }
            timing.first += Stopwatch.now() - start
            timing.packets += batch
            for copy in copies { sink &+= copy.readableBytes }
        }
        precondition(sink == timing.packets * plaintext.readableBytes)
        return timing
    }

    /// SecureChannel.send on an established channel, then receive at its peer.
    private func measureChannel(_ fixture: Fixture, _ plaintext: ByteBuffer) throws -> Timing {
        let batch = Self.batch(plaintext.readableBytes)
        var random = SeededRandom.fromSystem()
        var (sender, receiver) = try fixture.handshake(random: &random)
        var timing = Timing()
        var frames: [ByteBuffer] = []
        frames.reserveCapacity(batch)
        var delivered = 0
        while timing.first + timing.second < budget {
            frames.removeAll(keepingCapacity: true)
            let start = Stopwatch.now()
            for _ in 0..<batch {
                for case .transmit(let frame) in sender.send(plaintext, fixture.initiator, random: &random) {
                    frames.append(frame)
                }
            }
            let sealed = Stopwatch.now()
            for frame in frames {
                for case .deliver(let opened) in receiver.receive(frame, fixture.responder, random: &random) {
                    delivered &+= opened.readableBytes
                }
            }
            let opened = Stopwatch.now()
            timing.first += sealed - start
            timing.second += opened - sealed
            timing.packets += batch
        }
        guard frames.count == batch, delivered == timing.packets * plaintext.readableBytes else {
            throw BenchFailure("the channel sealed \(frames.count) of \(batch) frames or opened \(delivered) bytes of \(timing.packets * plaintext.readableBytes)")
        }
        return timing
    }

    /// An AEAD's seal and open as swift-crypto offers them, with the channel's associated data.
    private func measureRaw<AEAD: BenchAEAD>(_: AEAD.Type, _ plaintext: ByteBuffer) throws -> Timing {
        let batch = Self.batch(plaintext.readableBytes)
        let key = SymmetricKey(size: .bits256)
        let bytes = Array(plaintext.readableBytesView)
        let header = [UInt8](repeating: 0x22, count: 14)
        var nonce = [UInt8](repeating: 0, count: 12)
        var boxes: [AEAD.Box] = []
        boxes.reserveCapacity(batch)
        var timing = Timing()
        var counter: UInt64 = 0
        var opened = 0
        while timing.first + timing.second < budget {
            boxes.removeAll(keepingCapacity: true)
            let start = Stopwatch.now()
            for _ in 0..<batch {
                counter &+= 1
                withUnsafeBytes(of: counter.littleEndian) { nonce.replaceSubrange(4..<12, with: $0) }
                boxes.append(try AEAD.seal(bytes, key: key, nonce: nonce, header: header))
            }
            let sealed = Stopwatch.now()
            for box in boxes { opened &+= try AEAD.open(box, key: key, header: header) }
            let done = Stopwatch.now()
            timing.first += sealed - start
            timing.second += done - sealed
            timing.packets += batch
        }
        guard opened == timing.packets * bytes.count else { throw BenchFailure("\(AEAD.self) opened \(opened) bytes") }
        return timing
    }
}

/// What the raw-AEAD rows need of ChaChaPoly and AES.GCM, so one generic loop times both.
protocol BenchAEAD {
    associatedtype Box
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], header: [UInt8]) throws -> Box
    /// Opens `box`; returns the plaintext's length.
    static func open(_ box: Box, key: SymmetricKey, header: [UInt8]) throws -> Int
}

enum ChaChaPolyAEAD: BenchAEAD {
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], header: [UInt8]) throws -> ChaChaPoly.SealedBox {
        try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: header)
    }
    static func open(_ box: ChaChaPoly.SealedBox, key: SymmetricKey, header: [UInt8]) throws -> Int {
        try ChaChaPoly.open(box, using: key, authenticating: header).count
    }
}

enum AESGCMAEAD: BenchAEAD {
    static func seal(_ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], header: [UInt8]) throws -> AES.GCM.SealedBox {
        try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: header)
    }
    static func open(_ box: AES.GCM.SealedBox, key: SymmetricKey, header: [UInt8]) throws -> Int {
        try AES.GCM.open(box, using: key, authenticating: header).count
    }
}

/// Why a benchmark could not measure what it meant to (a broken channel, not a slow one).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The monotonic clock in nanoseconds.
enum Stopwatch {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}
