import NIOCore
import NIOEmbedded
@testable import Transports
import WOWKit

/// The tcp and tls transports' framing (`TCPFrameDecoder` in a `ByteToMessageHandler`, as in their channel
/// pipelines), fed a byte stream cut into reads where the input says, then closed.
///
/// Checks against a reference decoder that reads the whole stream at once: the same frames in the same
/// order, whatever the cuts, and the same first error (an empty frame, one over the limit, or bytes left
/// in an unfinished frame at close).
enum TCPFramesTarget: FuzzTarget {
    static let name = "tcp-frames"
    static let summary = "TCPFrameDecoder in an EmbeddedChannel, reads cut anywhere; same frames and errors as a reference"

    enum Outcome: Equatable {
        case frame([UInt8])
        case error(TCPFrameDecoder.FrameError)
    }

    /// The stream read at once.
    static func reference(_ stream: [UInt8], limit: Int) -> [Outcome] {
        var outcomes: [Outcome] = []
        var position = 0
        while stream.count - position >= 2 {
            let length = Int(stream[position]) << 8 | Int(stream[position + 1])
            if length == 0 { return outcomes + [.error(.emptyFrame)] }
            if length > limit { return outcomes + [.error(.frameTooLong(length: length, limit: limit))] }
            guard stream.count - position - 2 >= length else { break }
            outcomes.append(.frame(Array(stream[(position + 2)..<(position + 2 + length)])))
            position += 2 + length
        }
        if position < stream.count { outcomes.append(.error(.truncatedAtClose(bytes: stream.count - position))) }
        return outcomes
    }

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let limitByte = input.byte()
        let limit = limitByte == 0 ? WireFormat.maximumPacketSize : Int(limitByte) * 4
        // Read sizes cycle through these (1 to 64 bytes each).
        let cuts = (0..<4).map { _ in Int(input.byte() % 64) + 1 }
        let stream = input.rest()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(TCPFrameDecoder(maximumFrameLength: limit)))
        var outcomes: [Outcome] = []
        func collect() {
            while let frame = try? channel.readInbound(as: ByteBuffer.self) {
                require(frame.readableBytes > 0 && frame.readableBytes <= limit, "a frame of \(frame.readableBytes) bytes")
                outcomes.append(.frame(Array(frame.readableBytesView)))
            }
        }
        func note(_ error: Error) {
            guard let error = error as? TCPFrameDecoder.FrameError else {
                return require(false, "the decoder threw \(error)")
            }
            outcomes.append(.error(error))
        }
        var position = 0
        var failed = false
        var cut = 0
        while position < stream.count && !failed {
            let end = min(stream.count, position + cuts[cut % cuts.count])
            cut += 1
            var read = channel.allocator.buffer(capacity: end - position)
            read.writeBytes(stream[position..<end])
            position = end
            do {
                try channel.writeInbound(read)
            } catch {
                collect()
                note(error)
                failed = true
            }
            collect()
        }
        if !failed {
            do {
                _ = try channel.finish()
            } catch {
                collect()
                note(error)
            }
            collect()
        } else {
            _ = try? channel.finish()
        }
        let expected = reference(stream, limit: limit)
        require(outcomes == expected, "decoded \(outcomes.count) outcomes, the reference \(expected.count): "
                    + "\(outcomes.suffix(2)) vs \(expected.suffix(2))")
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func frame(_ payload: [UInt8]) -> [UInt8] { [UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload }
        let ping = WireSamples.bytes(EdgeMessage.ping(nonce: 1).encoded())
        let request = WireSamples.bytes(WireSamples.edgeMessages[0].1.encoded())
        return [
            ("one", [0, 64, 64, 64, 64] + frame(ping)),
            ("several-small-reads", [0, 1, 2, 3, 5] + frame(ping) + frame(request) + frame([1])),
            ("limit", [10, 7, 9, 1, 64] + frame([UInt8](repeating: 3, count: 40)) + frame([UInt8](repeating: 4, count: 41))),
            ("empty-frame", [0, 3, 3, 3, 3] + frame(ping) + [0, 0, 1]),
            ("truncated-at-close", [0, 63, 63, 63, 63] + frame(request) + [0, 200, 1, 2, 3]),
        ]
    }
}
