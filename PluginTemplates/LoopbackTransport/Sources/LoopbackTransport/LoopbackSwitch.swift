import Foundation
import NIOCore
import WOWKit

/// The medium of the `loopback` transport: carries datagrams between the listeners of one process, by port.
///
/// HOOK: this is the part a real transport replaces with its socket (a UDP socket, a QUIC stream, a
/// serial line...). The listener and edge around it stay as they are.
///
/// Every listener on one switch must run on one executor (the simulator's thread, or one event loop): a
/// packet is delivered by the receiver's scheduler, and the scheduler of a node may only be used on that
/// node's executor. `wow run` has one node per process, so over `loopback` it reaches only nodes of its own
/// process.
public final class LoopbackSwitch: @unchecked Sendable {
    // @unchecked: `listeners` is only read and written under `lock`; the listeners themselves are used only
    // on their one executor (above).
    private let lock = NSLock()
    private var listeners: [UInt16: LoopbackEdgeListener] = [:]
    private var nextPort: UInt16 = 1

    /// The switch of the process, which `LoopbackTransport.makeListener(settings:context:)` uses.
    public static let shared = LoopbackSwitch()

    public init() {}

    /// Reserves `port` (or the next free one) for `listener`; nil when it is taken or none is left.
    func attach(_ listener: LoopbackEdgeListener, port: UInt16?) -> UInt16? {
        lock.lock()
        defer { lock.unlock() }
        if let port {
            guard port != 0, listeners[port] == nil else { return nil }
            listeners[port] = listener
            return port
        }
        for _ in 0..<Int(UInt16.max) {
            let candidate = nextPort
            nextPort = nextPort == .max ? 1 : nextPort + 1
            if listeners[candidate] == nil {
                listeners[candidate] = listener
                return candidate
            }
        }
        return nil
    }

    /// Frees `port`.
    func detach(port: UInt16) {
        lock.lock()
        listeners[port] = nil
        lock.unlock()
    }

    /// The listener at `port`, if any.
    func listener(at port: UInt16) -> LoopbackEdgeListener? {
        lock.lock()
        defer { lock.unlock() }
        return listeners[port]
    }
}
