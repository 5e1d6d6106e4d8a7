import Foundation
import XCTest

/// A blocking TCP socket to 127.0.0.1, for tests that talk to a node's servers (metrics, web view) or send a
/// listener raw bytes. Closed when released.
final class LoopbackSocket {
    let descriptor: Int32

    /// Connected to `port`; reads wait at most `timeout` seconds.
    init(port: Int, timeout: Double = 5) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(port).bigEndian)
        target.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ECONNREFUSED)
        }
    }

    deinit { close(descriptor) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Everything until the peer closes (or the read timeout).
    func readToEnd() -> [UInt8] {
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += chunk[0..<count]
        }
        return response
    }

    /// Sends `request` to 127.0.0.1:`port` and returns what comes back within `wait` seconds.
    static func exchange(_ request: String, port: Int, wait: Double = 5) throws -> String {
        let socket = try LoopbackSocket(port: port, timeout: wait)
        socket.send(Array(request.utf8))
        return String(decoding: socket.readToEnd(), as: UTF8.self)
    }
}
