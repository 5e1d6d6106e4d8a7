import NIOCore

/// Where a node's virtual network meets the host: a TUN device for real, a recording one in tests.
///
/// Contract: `write` is called on the node's executor, once per IP packet, with the packet at the buffer's
/// readable bytes, and must not block the caller. The device may keep the buffer (a value), but a device that
/// is done with it when `write` returns lets the caller reuse its storage for the next packet. A device that cannot take the packet drops it (and
/// counts it). Packets the host sends go to `VirtualInterface.receiveFromDevice`, on the node's executor.
public protocol PacketDevice: AnyObject {
    func write(_ packet: ByteBuffer)
    /// Whether the host hands up TCP super-segments (larger than the MTU) through segmentation offload.
    var isOffloading: Bool { get }
    /// Whether the device takes TCP super-segments from `write(_:segmentSize:)` (a TUN device with virtio-net
    /// headers: the host's TCP takes them as a network card's receive offload hands them up). Only then does
    /// the interface put consecutive segments of a flow back together before writing them (`TCPCoalescer`).
    var takesSuperSegments: Bool { get }
    /// Writes a TCP super-segment (IPv4 or IPv6): consecutive segments of one flow merged behind one header, all of
    /// `segmentSize` payload bytes but the last. Called only when `takesSuperSegments`; same contract as
    /// `write`.
    func write(_ packet: ByteBuffer, segmentSize: Int)
    /// Packets the device could not write.
    var writeFailures: Int { get }
}

extension PacketDevice {
    public var isOffloading: Bool { false }
    public var takesSuperSegments: Bool { false }
    public func write(_ packet: ByteBuffer, segmentSize: Int) { write(packet) }
    public var writeFailures: Int { 0 }
}
