#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// A listening TCP socket opened synchronously, for `ServerBootstrap.withBoundSocket`.
///
/// Why not `ServerBootstrap.bind`: `EdgeListener.start` runs on the node's event loop and must throw at once if
/// the address cannot be bound, but `ServerBootstrap` binds in a task it submits to that same loop, so its
/// result arrives only after `start` returned (and the loop cannot wait for itself). Binding here with the
/// plain system calls gives the operating system's answer in the call; NIO then adopts the socket.
enum TCPListeningSocket {
    /// The kernel's queue of connections not yet accepted.
    static let backlog: CInt = 256

    /// Creates a socket of `endpoint`'s family with SO_REUSEADDR (a restarted node can bind again while old
    /// connections linger in TIME_WAIT; on Linux it does not allow two listeners on one port), binds it and
    /// listens. Returns the descriptor, which the caller must hand to NIO or close, and the bound endpoint
    /// (with the actual port when `endpoint` gave port 0).
    static func open(_ endpoint: IPEndpoint, transport: String) throws(TCPTransportError) -> (handle: NIOBSDSocket.Handle, bound: IPEndpoint) {
        func failure(_ step: String) -> TCPTransportError {
            let reason = String(cString: strerror(errno))
            return .bindFailed(transport: transport, address: endpoint.description, reason: "\(reason) (\(step))")
        }
        #if canImport(Darwin)
        let socketType = SOCK_STREAM
        #else
        let socketType = CInt(SOCK_STREAM.rawValue)
        #endif
        let fd = socket(CInt(endpoint.address.protocol.rawValue), socketType, 0)
        guard fd >= 0 else { throw failure("socket") }
        var succeeded = false
        defer { if !succeeded { _ = close(fd) } }

        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var one: CInt = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            throw failure("setsockopt SO_REUSEADDR")
        }
        let bound = endpoint.address.withSockAddr { address, length in
            bind(fd, address, socklen_t(length))
        }
        guard bound == 0 else { throw failure("bind") }
        guard listen(fd, backlog) == 0 else { throw failure("listen") }

        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw failure("getsockname") }
        let port: Int
        switch CInt(storage.ss_family) {
        case AF_INET:
            port = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            }
        case AF_INET6:
            port = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        default:
            port = endpoint.port
        }
        guard let host = endpoint.address.ipAddress, let address = try? SocketAddress(ipAddress: host, port: port) else {
            throw .bindFailed(transport: transport, address: endpoint.description, reason: "cannot read the bound address")
        }
        succeeded = true
        return (fd, IPEndpoint(address))
    }
}
