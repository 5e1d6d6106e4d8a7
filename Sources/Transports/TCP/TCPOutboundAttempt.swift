#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOSSL
import WOWKit

/// One `createEdge` of a stream transport in progress: from the connect until the edge is up (TCP connected,
/// and for `tls` the handshake done), it fails, times out, or the listener stops. Its completion runs exactly
/// once, whichever comes first (`complete`); later outcomes are ignored. Lives on the listener's event loop.
final class TCPOutboundAttempt {
    /// The URI the node asked for; the edge's `remoteURI`.
    let uri: TransportURI
    /// The connection's channel, once the bootstrap made it (to close it on a timeout or stop).
    var channel: (any Channel)?
    /// The whole attempt's deadline (connect, the proxy's `CONNECT` and handshake).
    var timeout: Scheduled<Void>?
    /// The HTTP proxy the connection goes through; nil when it goes directly.
    var proxy: HTTPProxy?
    private var completion: ((Result<any Edge, EdgeError>) -> Void)?

    init(uri: TransportURI, completion: @escaping (Result<any Edge, EdgeError>) -> Void) {
        self.uri = uri
        self.completion = completion
    }

    /// Whether the attempt has no outcome yet.
    var isPending: Bool { completion != nil }

    /// Ends the attempt: returns its completion for the caller to run (now or later), or nil if it already
    /// ended. Cancels the deadline.
    func takeCompletion() -> ((Result<any Edge, EdgeError>) -> Void)? {
        guard let completion else { return nil }
        self.completion = nil
        timeout?.cancel()
        timeout = nil
        return completion
    }

    /// Words for why a connection failed, for `EdgeError.unreachable`.
    static func describe(_ error: any Error, timeout: TimeAmount) -> String {
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET: return "connection reset by the peer"
            case ENETUNREACH: return "network unreachable"
            case EHOSTUNREACH: return "host unreachable"
            case ETIMEDOUT: return "timed out"
            default: return "\(error)"
            }
        }
        if case .connectTimeout = error as? ChannelError {
            return "timed out after \(timeout.nanoseconds / 1_000_000) ms"
        }
        if error is NIOSSLError || error is BoringSSLError {
            return "TLS handshake failed: \(error)"
        }
        return "\(error)"
    }
}
