import Foundation
import Logging
import NIOCore
import NIOPosix
import Transports
import WOWKit

/// Packets of one size between two `udp` listeners on 127.0.0.1, both on one event loop (so the figure is the
/// whole cost, sender and receiver, on one core): windows of packets are sent and the next window goes once
/// the last arrived, for `seconds`. A window that stalls 100 ms (lost fragments) is counted lost and the next
/// one goes.
final class UDPBenchmark: EdgeListenerDelegate, EdgeDelegate {
    struct Case: Sendable {
        var name: String
        var size: Int
        var window: Int
        var segmentationOffload: Bool
        var receiveOffload: Bool
    }

    struct Result: Codable, Sendable {
        var name: String
        var bytes: Int
        var packets: Int
        var lost: Int
        var seconds: Double
        var datagrams_per_packet: Double
        var gso_writes: Int
        var gro_reads: Int
        var packets_per_s: Double { Double(packets) / seconds }
        var gbit_per_s: Double { Double(packets * bytes) * 8 / seconds / 1e9 }
    }

    private let benchCase: Case
    private let seconds: Double
    private let loop: any EventLoop
    private let sender: UDPEdgeListener
    private let receiver: UDPEdgeListener
    private let packet: ByteBuffer
    private var edge: (any Edge)?
    private var sent = 0
    private var received = 0
    private var lost = 0
    private var lastProgress = 0
    private var start = NIODeadline.now()
    private var done: EventLoopPromise<Result>?

    init(_ benchCase: Case, seconds: Double, loop: any EventLoop) throws {
        self.benchCase = benchCase
        self.seconds = seconds
        self.loop = loop
        var logger = Logger(label: "wow.bench.udp")
        logger.logLevel = .warning
        let settings = UDPTransport.Settings(listen: "127.0.0.1:0")
        sender = try UDPEdgeListener(settings: settings, eventLoop: loop, logger: logger)
        receiver = try UDPEdgeListener(settings: settings, eventLoop: loop, logger: logger)
        for listener in [sender, receiver] {
            listener.usesSegmentationOffload = benchCase.segmentationOffload && System.supportsUDPSegmentationOffload
            listener.usesReceiveOffload = benchCase.receiveOffload && System.supportsUDPReceiveOffload
        }
        packet = ByteBuffer(repeating: 0x5A, count: benchCase.size)
    }

    /// Runs the case on the loop; call from the loop.
    func run() throws -> EventLoopFuture<Result> {
        try sender.start(delegate: self)
        try receiver.start(delegate: self)
        let promise = loop.makePromise(of: Result.self)
        done = promise
        let uri = try TransportURI("udp://127.0.0.1:\(receiver.port ?? 0)")
        sender.createEdge(to: uri) { [self] result in
            guard case .success(let edge) = result else {
                return promise.fail(EdgeError.unreachable(uri, reason: "no edge"))
            }
            self.edge = edge
            start = .now()
            sendWindow()
            checkProgress()
        }
        return promise.futureResult.always { [self] _ in
            sender.stop()
            receiver.stop()
        }
    }

    private func sendWindow() {
        guard let edge else { return }
        for _ in 0..<benchCase.window { edge.send(packet) }
        sent += benchCase.window
    }

    private func checkProgress() {
        loop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in
            guard done != nil else { return }
            if received == lastProgress && received < sent {
                lost += sent - received
                sent = received
                sendWindow()
            }
            lastProgress = received
            checkProgress()
        }
    }

    private func finish() {
        guard let done else { return }
        self.done = nil
        let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        done.succeed(Result(name: benchCase.name, bytes: benchCase.size, packets: received, lost: lost,
                            seconds: elapsed,
                            datagrams_per_packet: Double(receiver.datagramsReceived) / Double(max(1, received)),
                            gso_writes: sender.offloadWrites, gro_reads: receiver.coalescedReads))
    }

    func edgeListener(_ listener: any EdgeListener, didAccept edge: any Edge) {
        edge.delegate = self
    }

    func edge(_ edge: any Edge, didReceive packet: ByteBuffer) {
        received += 1
        guard received == sent else { return }
        if Double((NIODeadline.now() - start).nanoseconds) / 1e9 >= seconds {
            finish()
        } else {
            sendWindow()
        }
    }

    func edgeDidClose(_ edge: any Edge) {}
}
