#if canImport(Glibc)
import Glibc
#endif

/// The calling thread's heap allocations so far, as counted by `Scripts/allocation-counter.c` when the process
/// runs with it preloaded (`LD_PRELOAD`); found with `dlsym`, so a normal `wow` carries no counter at all.
enum AllocationCounter {
    private typealias Count = @convention(c) () -> UInt64

    private static let function: Count? = {
        #if canImport(Glibc)
        // dlsym(RTLD_DEFAULT, ...): RTLD_DEFAULT is glibc's null handle.
        guard let symbol = dlsym(nil, "wow_allocation_count") else { return nil }
        return unsafeBitCast(symbol, to: Count.self)
        #else
        return nil
        #endif
    }()

    /// Whether the counter is preloaded.
    static var isAvailable: Bool { function != nil }

    /// Allocations by the calling thread so far (0 without the counter).
    static func count() -> UInt64 { function?() ?? 0 }
}
