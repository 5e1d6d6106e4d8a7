#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import WOWKit

/// A Linux TUN device carrying one node's virtual network: IP packets in and out of the host's stack.
///
/// `open` creates and configures the device (needs root or CAP_NET_ADMIN); `start` reads it on the node's
/// event loop and hands each packet to `receive`, there. `write` (on the same loop) writes one packet
/// per call: a TUN file takes one packet per `write(2)`, so writes are never coalesced. The device goes away
/// with `close` or the process.
///
/// The device always carries a `VirtioNetHeader` before each packet, so that it takes TCP super-segments
/// (`write(_:segmentSize:)`: segments the virtual interface put back together) and partial checksums
/// (`TunOffload.toHost`). With `settings.offload` it also asks the kernel for checksum and TCP segmentation
/// offload, and then hands up super-segments of up to 64 KB with their segment size (`TunOffload.fromHost`):
/// one read and one route decision for up to 45 segments.
public final class TunDevice: PacketDevice {
    /// The device's name as the kernel gave it.
    public let name: String
    public let settings: VirtualNetwork.Settings
    /// Whether the kernel hands up super-segments (the settings asked and the kernel agreed).
    public let isOffloading: Bool
    private let descriptor: CInt
    private var channel: (any Channel)?
    private var isClosed = false
    /// Packets the kernel would not take (counted, not retried: IP above copes with loss).
    public private(set) var writeFailures = 0

    private init(name: String, settings: VirtualNetwork.Settings, descriptor: CInt, isOffloading: Bool) {
        self.name = name
        self.settings = settings
        self.descriptor = descriptor
        self.isOffloading = isOffloading
    }

    /// Creates the device named in `settings`, gives it `addresses` (an IPv4 one, an IPv6 one, or both), each
    /// in the settings' network of its family, and the MTU, and brings it up.
    public static func open(settings: VirtualNetwork.Settings, addresses: [VirtualIP]) throws(TunDeviceError) -> TunDevice {
        #if os(Linux)
        let fd = Glibc.open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(errno: errno) }
        var request = InterfaceRequest(name: settings.deviceName)
        request.flags = TunDevice.iffTun | TunDevice.iffNoPI | TunDevice.iffVnetHdr
        guard request.perform(TunDevice.tunSetInterface, on: fd) else {
            let code = errno
            _ = Glibc.close(fd)
            throw .cannotCreate(name: settings.deviceName, errno: code)
        }
        let name = request.name
        // A kernel without these offloads still works, one MTU-sized packet at a time.
        let isOffloading = settings.offload && ioctl(fd, TunDevice.tunSetOffload, TunDevice.offloadFlags) == 0
        do {
            try configure(name: name, addresses: addresses, settings: settings)
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        return TunDevice(name: name, settings: settings, descriptor: fd, isOffloading: isOffloading)
        #else
        throw .unsupportedPlatform
        #endif
    }

    /// Takes super-segments: the kernel accepts them behind a virtio-net header whatever `offload` says.
    public var takesSuperSegments: Bool { true }

    /// Reads packets on `loop` and hands each to `receive` there, with its segment size when it is a TCP
    /// super-segment, or the reason it was dropped to `dropped` (a drop counter's name). Call once, off the
    /// loop; both are called on `loop` only. `receive` must be done with the buffer when it returns (the
    /// next read goes to the same storage unless it keeps a copy).
    public func start(on loop: any EventLoop, receive: @escaping @Sendable (ByteBuffer, Int?) -> Void,
                      dropped: @escaping @Sendable (String) -> Void) throws {
        // The pipe channel tells us when the device is readable and reads the first packet; the handler then
        // drains the device itself. A TUN read returns one packet and epoll is edge-triggered, so a channel
        // that stops after a read shorter than its buffer (right for a byte stream) would leave the rest
        // queued until the next packet arrives.
        let capacity = VirtioNetHeader.size + (isOffloading ? Int(UInt16.max) : max(settings.mtu, 2048))
        let channel = try NIOPipeBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: capacity))
            .channelInitializer { [descriptor] channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = TunReadHandler(descriptor: descriptor, capacity: capacity) { buffer in
                        if let reason = TunOffload.fromHost(&buffer, deliver: receive) {
                            dropped(reason)
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .wait()
        self.channel = channel
    }

    /// Writes `packet` behind its `VirtioNetHeader`; a TCP packet's checksum field is replaced by the partial
    /// one on the way (spliced into the write: the packet itself is not copied or changed).
    public func write(_ packet: ByteBuffer) {
        write(packet, segmentSize: nil)
    }

    /// Writes a TCP super-segment of `segmentSize`-byte segments, the same way.
    public func write(_ packet: ByteBuffer, segmentSize: Int) {
        write(packet, segmentSize: Optional(segmentSize))
    }

    private func write(_ packet: ByteBuffer, segmentSize: Int?) {
        guard !isClosed else { return }
        let (header, partialChecksum) = TunOffload.toHost(packet, mtu: settings.mtu, segmentSize: segmentSize)
        let expected = VirtioNetHeader.size + packet.readableBytes
        let written = withUnsafeTemporaryAllocation(byteCount: VirtioNetHeader.size + 2, alignment: 2) { scratch in
            header.write(to: scratch)
            if let partialChecksum {
                scratch.storeBytes(of: partialChecksum.bigEndian, toByteOffset: VirtioNetHeader.size, as: UInt16.self)
            }
            return packet.withUnsafeReadableBytes { bytes in
                withUnsafeTemporaryAllocation(of: iovec.self, capacity: 4) { vectors in
                    vectors[0] = iovec(iov_base: scratch.baseAddress, iov_len: VirtioNetHeader.size)
                    guard partialChecksum != nil else {
                        vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                        return writev(descriptor, vectors.baseAddress, 2)
                    }
                    let field = Int(header.checksumStart + header.checksumOffset)
                    vectors[1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: field)
                    vectors[2] = iovec(iov_base: scratch.baseAddress! + VirtioNetHeader.size, iov_len: 2)
                    vectors[3] = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress! + field + 2),
                                       iov_len: bytes.count - field - 2)
                    return writev(descriptor, vectors.baseAddress, 4)
                }
            }
        }
        if written != expected { writeFailures += 1 }
    }

    /// Closes the device; the kernel removes it.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if let channel {
            channel.close(promise: nil)
        } else {
            _ = Glibc.close(descriptor)
        }
    }

    // MARK: - Linux interface configuration

    static let tunSetInterface: UInt = 0x4004_54CA
    static let iffTun: Int16 = 0x0001
    static let iffNoPI: Int16 = 0x1000
    static let iffVnetHdr: Int16 = 0x4000
    static let tunSetOffload: UInt = 0x4004_54D0
    /// TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN: partial checksums and TCP/IPv4 and TCP/IPv6
    /// super-segments (with ECN).
    static let offloadFlags: CInt = 0x01 | 0x02 | 0x04 | 0x08

    /// Addresses, netmask, MTU and up, through the classic interface ioctls on datagram sockets.
    private static func configure(name: String, addresses: [VirtualIP], settings: VirtualNetwork.Settings) throws(TunDeviceError) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard socket >= 0 else { throw .cannotConfigure(name: name, step: "open a control socket", errno: errno) }
        defer { _ = Glibc.close(socket) }

        let ipv6 = addresses.first { $0.family == .v6 }
        // Without an IPv6 address the kernel would send router solicitations into the device; with one, it
        // must not ask for routers either (there are none: the overlay routes).
        let conf = "/proc/sys/net/ipv6/conf/\(name)"
        if ipv6 == nil {
            writeSetting("\(conf)/disable_ipv6", "1")
        } else {
            writeSetting("\(conf)/accept_ra", "0")
            writeSetting("\(conf)/router_solicitations", "0")
            writeSetting("\(conf)/disable_ipv6", "0")
        }
        if let ipv4 = addresses.first(where: { $0.family == .v4 }), let netmask = settings.prefix.netmask {
            var request = InterfaceRequest(name: name)
            request.setIPv4(ipv4)
            guard request.perform(UInt(SIOCSIFADDR), on: socket) else {
                throw .cannotConfigure(name: name, step: "set address \(ipv4)", errno: errno)
            }
            request = InterfaceRequest(name: name)
            request.setIPv4(netmask)
            guard request.perform(UInt(SIOCSIFNETMASK), on: socket) else {
                throw .cannotConfigure(name: name, step: "set netmask \(netmask)", errno: errno)
            }
        }
        var request = InterfaceRequest(name: name)
        request.mtu = Int32(settings.mtu)
        guard request.perform(UInt(SIOCSIFMTU), on: socket) else {
            throw .cannotConfigure(name: name, step: "set MTU \(settings.mtu)", errno: errno)
        }
        request = InterfaceRequest(name: name)
        guard request.perform(UInt(SIOCGIFFLAGS), on: socket) else {
            throw .cannotConfigure(name: name, step: "read flags", errno: errno)
        }
        request.flags |= Int16(IFF_UP | IFF_RUNNING)
        guard request.perform(UInt(SIOCSIFFLAGS), on: socket) else {
            throw .cannotConfigure(name: name, step: "bring it up", errno: errno)
        }
        if let ipv6 { try addIPv6(ipv6, length: settings.ipv6Prefix.length, to: name) }
    }

    /// Gives the device an IPv6 address and its network's route (`struct in6_ifreq` on an IPv6 socket).
    private static func addIPv6(_ ip: VirtualIP, length: Int, to name: String) throws(TunDeviceError) {
        let socket = Glibc.socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard socket >= 0 else {
            throw .cannotConfigure(name: name, step: "open an IPv6 control socket (is IPv6 disabled on this host?)", errno: errno)
        }
        defer { _ = Glibc.close(socket) }
        let index = if_nametoindex(name)
        guard index != 0 else { throw .cannotConfigure(name: name, step: "find its index", errno: errno) }
        // struct in6_ifreq { struct in6_addr ifr6_addr; __u32 ifr6_prefixlen; int ifr6_ifindex; }
        var request = [UInt8](repeating: 0, count: 24)
        request.replaceSubrange(0..<16, with: ip.bytes)
        withUnsafeBytes(of: UInt32(length)) { request.replaceSubrange(16..<20, with: $0) }
        withUnsafeBytes(of: Int32(bitPattern: index)) { request.replaceSubrange(20..<24, with: $0) }
        let result = request.withUnsafeMutableBytes { ioctl(socket, UInt(SIOCSIFADDR), $0.baseAddress!) }
        guard result >= 0 else {
            throw .cannotConfigure(name: name, step: "set address \(ip)/\(length)", errno: errno)
        }
    }

    /// Writes one value to a /proc/sys file; a kernel without it goes on without.
    private static func writeSetting(_ path: String, _ value: String) {
        guard let file = fopen(path, "w") else { return }
        fputs(value, file)
        fclose(file)
    }
}

/// `struct ifreq`: an interface name and one value.
private struct InterfaceRequest {
    var raw = ifreq()

    init(name: String) {
        withUnsafeMutableBytes(of: &raw.ifr_ifrn.ifrn_name) { bytes in
            for (index, byte) in name.utf8.prefix(bytes.count - 1).enumerated() { bytes[index] = byte }
        }
    }

    var name: String {
        withUnsafeBytes(of: raw.ifr_ifrn.ifrn_name) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    var flags: Int16 {
        get { raw.ifr_ifru.ifru_flags }
        set { raw.ifr_ifru.ifru_flags = newValue }
    }

    var mtu: Int32 {
        get { raw.ifr_ifru.ifru_mtu }
        set { raw.ifr_ifru.ifru_mtu = newValue }
    }

    /// Puts `ip` in the request's address field (as a `sockaddr_in`).
    mutating func setIPv4(_ ip: VirtualIP) {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = (ip.ipv4 ?? 0).bigEndian
        withUnsafeMutableBytes(of: &raw.ifr_ifru.ifru_addr) { target in
            withUnsafeBytes(of: address) { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(target.count)))
            }
        }
    }

    mutating func perform(_ request: UInt, on descriptor: CInt) -> Bool {
        withUnsafeMutableBytes(of: &raw) { bytes in ioctl(descriptor, request, bytes.baseAddress!) } >= 0
    }
}

/// Hands each packet read from the device to the virtual network, draining the device at each wakeup.
private final class TunReadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let descriptor: CInt
    let capacity: Int
    /// Takes the packet in place (it may complete its checksum there) and is done with it when it returns,
    /// unless it keeps a copy of the buffer.
    let receive: (inout ByteBuffer) -> Void
    let allocator = ByteBufferAllocator()
    /// The buffer packets are read into, and handed up in: the overlay copies a packet into its frame before
    /// `receive` returns, so the same storage takes the next read. A packet kept beyond that (rare: one
    /// waiting for the node to join) keeps this storage, and the next read gets a new one.
    var scratch: ByteBuffer
    /// Packets read per wakeup before yielding to the loop's other work (then the drain continues in a task).
    static let batch = 128

    init(descriptor: CInt, capacity: Int, receive: @escaping (inout ByteBuffer) -> Void) {
        self.descriptor = descriptor
        self.capacity = capacity
        self.receive = receive
        scratch = allocator.buffer(capacity: capacity)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var first = unwrapInboundIn(data)
        receive(&first)
        drain(context: context)
    }

    private func drain(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        for _ in 0..<TunReadHandler.batch {
            let count = scratch.withUnsafeMutableWritableBytes { bytes in
                Glibc.read(descriptor, bytes.baseAddress, bytes.count)
            }
            guard count > 0 else { return }  // EAGAIN: drained (errors surface on the channel's own read).
            scratch.moveWriterIndex(forwardBy: count)
            // In place: no copy and, while nothing keeps the packet, no allocation per read.
            receive(&scratch)
            scratch.clear()
        }
        // More may be queued and no new edge may come: continue after the loop's other work.
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute { bound.value.0.drain(context: bound.value.1) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A read error on a TUN device (it went away) ends reading; the node keeps routing for others.
        context.close(promise: nil)
    }
}

/// Why the TUN device could not be set up.
public enum TunDeviceError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(errno: CInt)
    case cannotCreate(name: String, errno: CInt)
    case cannotConfigure(name: String, step: String, errno: CInt)
    case unsupportedPlatform

    public var description: String {
        switch self {
        case .cannotOpen(let code):
            return "cannot open /dev/net/tun: \(TunDeviceError.text(code))"
                + (code == ENOENT ? " (load the tun module: modprobe tun)" : TunDeviceError.privilegeHint(code))
        case .cannotCreate(let name, let code):
            return "cannot create TUN device '\(name)': \(TunDeviceError.text(code))"
                + (code == EBUSY ? " (another program holds a device of that name; pick another 'virtual_network.device')"
                   : TunDeviceError.privilegeHint(code))
        case .cannotConfigure(let name, let step, let code):
            return "cannot configure TUN device '\(name)' (\(step)): \(TunDeviceError.text(code))"
                + TunDeviceError.privilegeHint(code)
        case .unsupportedPlatform:
            return "TUN devices are supported on Linux only"
        }
    }

    private static func text(_ code: CInt) -> String { String(cString: strerror(code)) }

    private static func privilegeHint(_ code: CInt) -> String {
        code == EPERM || code == EACCES ? " (run as root, or give the binary CAP_NET_ADMIN: setcap cap_net_admin+ep wow)" : ""
    }
}
