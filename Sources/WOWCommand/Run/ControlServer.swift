import Foundation
import NIOCore
import NIOPosix
import WOWKit

/// The node's local control socket (a Unix domain socket, owner-only): a client writes one command line
/// (`status`) and reads one JSON object back; the server then closes the connection.
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

    init(node: NIOLoopBound<Node>) { self.node = node }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        guard let newline = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if received.readableBytes > ControlServer.maximumCommandLength { answer(context, error: "command too long") }
            return
        }
        let line = received.getString(at: received.readerIndex, length: newline - received.readerIndex) ?? ""
        switch line.trimmingCharacters(in: .whitespaces) {
        case "status":
            do {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                var data = try encoder.encode(node.value.status())
                data.append(UInt8(ascii: "\n"))
                write(context, data)
            } catch {
                answer(context, error: "cannot encode status: \(error)")
            }
        default:
            answer(context, error: "unknown command '\(line)'; known: status")
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
