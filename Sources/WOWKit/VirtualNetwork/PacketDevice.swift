import NIOCore

/// Where a node's virtual network meets the host: a TUN device for real, a recording one in tests.
///
/// Contract: `write` is called on the node's executor, once per IP packet, with the packet at the buffer's
/// readable bytes; the device owns the buffer from then on and must not block the caller. A device that
/// cannot take the packet drops it (and counts it). Packets the host sends go to
/// `VirtualInterface.receiveFromDevice`, on the node's executor.
public protocol PacketDevice: AnyObject {
    func write(_ packet: ByteBuffer)
    /// Whether the host hands up TCP super-segments (larger than the MTU) through segmentation offload.
    var isOffloading: Bool { get }
    /// Packets the device could not write.
    var writeFailures: Int { get }
}

extension PacketDevice {
    public var isOffloading: Bool { false }
    public var writeFailures: Int { 0 }
}
