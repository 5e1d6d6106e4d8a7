#if canImport(Glibc)
import Glibc
#endif

/// The allocator settings for a process that carries packets.
///
/// The data path allocates and frees buffers of 64-128 KB thousands of times a second (TUN super-segments,
/// UDP reads, fragment batches, sealed frames). With glibc's defaults, allocations of 128 KB and more are
/// mapped and unmapped each time, and freed memory at the top of the heap above 128 KB is given back and
/// faulted in again: page faults and page clearing took more CPU than the AES (peerbench: 802 Mbit/s at
/// 9.7 CPU s/GB before, 1,296 at 5.8 after). Up to 4 MiB now comes from the heap, and the heap keeps up to
/// 64 MiB of freed memory for reuse instead of returning it at once.
///
/// `mallopt` is looked up at run time: Swift's Glibc module does not import <malloc.h>, and another C library
/// (musl) has no such knobs, in which case nothing changes.
enum PacketMemory {
    static func tune() {
        #if canImport(Glibc)
        typealias MallOpt = @convention(c) (CInt, CInt) -> CInt
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        let trimThreshold: CInt = -1, mmapThreshold: CInt = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
        _ = mallopt(mmapThreshold, 4 << 20)
        _ = mallopt(trimThreshold, 64 << 20)
        #endif
    }
}
