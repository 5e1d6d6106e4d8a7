import Foundation
import NIOCore
import NIOPosix
import WOWKit

/// The node's local control socket (a Unix domain socket, owner-only): a client writes one command line and
/// reads one JSON object back; the server then closes the connection. Commands: `status`; `resolve TARGET`
/// (a name, virtual IP or ring address); `ping TARGET SEQUENCE TIMEOUT_MS` (one overlay echo, answered when
/// the reply comes or the time is up). A bad command answers `{"error": ...}`.
enum ControlServer {
    static let maximumCommandLength = 256

    static func bind(path: String, on loop: any EventLoop, node: NIOLoopBound<Node>) throws -> any Channel {
        removeSocketFile(path)
        let channel = try ServerBootstrap(group: loop)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ControlHandler(node: node))
                }
            }
            .bind(unixDomainSocketPath: path).wait()
        chmod(path, 0o600)
        return channel
    }

    static func removeSocketFile(_ path: String) {
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }
}

/// Reads one command line and answers it.
private final class ControlHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let node: NIOLoopBound<Node>
    private var received = ByteBuffer()
    private var hasCommand = false

    init(node: NIOLoopBound<Node>) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // One command per connection: what follows it is ignored while the answer is on its way.
        guard !hasCommand else { return }
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        guard let newline = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if received.readableBytes > ControlServer.maximumCommandLength { answer(context, error: "command too long") }
            return
        }
        let line = received.getString(at: received.readerIndex, length: newline - received.readerIndex) ?? ""
        received.clear()
        hasCommand = true
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let node = node.value
        switch words.first {
        case "status" where words.count == 1:
            answer(context, node.status())
        case "resolve" where words.count == 2:
            node.resolve(words[1]) { [self] result in
                switch result {
                case .success(let target): answer(context, ControlAnswer.Resolved(target))
                case .failure(let failure): answer(context, error: failure.description)
                }
            }
        case "ping" where words.count == 4:
            guard let sequence = UInt32(words[2]), let milliseconds = Int64(words[3]), (1...60_000).contains(milliseconds) else {
                return answer(context, error: "usage: ping TARGET SEQUENCE TIMEOUT_MS (1...60000)")
            }
            node.resolve(words[1]) { [self] result in
                switch result {
                case .failure(let failure): answer(context, error: failure.description)
                case .success(let target):
                    node.echo(target.address, sequence: sequence, timeout: .milliseconds(milliseconds)) { [self] outcome in
                        answer(context, ControlAnswer.Echoed(target: target, sequence: sequence, outcome: outcome))
                    }
                }
            }
        default:
            answer(context, error: "unknown command '\(line)'; known: status, resolve TARGET, ping TARGET SEQUENCE TIMEOUT_MS")
        }
    }

    private func answer(_ context: ChannelHandlerContext, _ value: some Encodable) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var data = try encoder.encode(value)
            data.append(UInt8(ascii: "\n"))
            write(context, data)
        } catch {
            answer(context, error: "cannot encode the answer: \(error)")
        }
    }

    private func answer(_ context: ChannelHandlerContext, error: String) {
        let object = ["error": error]
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        write(context, data + [UInt8(ascii: "\n")])
    }

    private func write(_ context: ChannelHandlerContext, _ data: Data) {
        var buffer = context.channel.allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// What the control socket answers besides `status` (the JSON a client decodes).
enum ControlAnswer {
    /// `resolve`: who a target is.
    struct Resolved: Codable, Equatable {
        var address: String
        var name: String?
        var virtual_ips: [String]

        init(_ target: ResolvedTarget) {
            address = target.address.hex
            name = target.name
            virtual_ips = target.virtualIPs.map(\.description)
        }
    }

    /// `ping`: one echo's outcome; `failure` says why no reply came.
    struct Echoed: Codable, Equatable {
        var target: Resolved
        var sequence: UInt32
        var rtt_ms: Double?
        var hops_there: Int?
        var hops_back: Int?
        var path: String?
        var direct: Bool?
        var failure: String?

        init(target: ResolvedTarget, sequence: UInt32, outcome: Result<EchoOutcome, EchoFailure>) {
            self.target = Resolved(target)
            self.sequence = sequence
            switch outcome {
            case .success(let echo):
                rtt_ms = echo.roundTrip.seconds * 1000
                hops_there = echo.hopsThere
                hops_back = echo.hopsBack
                path = echo.path
                direct = echo.isDirect
            case .failure(let failure):
                self.failure = failure.description
            }
        }
    }
}
