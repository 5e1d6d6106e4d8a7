import Foundation
import WOWKit

/// Follows a revocation list file (`security.revoked`) for a running node: each `poll` says whether the file
/// changed since the last one and, if so, what it holds now. A node applies a new list without restarting.
///
/// A change is a different modification time, size or inode (an atomic replace, as `wow cert revoke` does,
/// gives a new inode even within one clock tick). Not thread-safe: one owner polls.
struct RevocationWatch {
    /// What a poll found.
    enum Change: Equatable {
        /// The file is as it was at the last poll.
        case unchanged
        /// The file changed and parses: the new list.
        case updated(RevocationList)
        /// The file changed (or vanished) and cannot be used; the previous list stays in force.
        case failed(RevocationList.Failure)
    }

    let path: String
    private var hasPolled = false
    /// The version read at the last poll; nil when the file was missing then.
    private var lastSeen: FileVersion?

    /// The first `poll` reads the file whatever its state.
    init(path: String) { self.path = path }

    mutating func poll() -> Change {
        let version = FileVersion(path: path)
        guard !hasPolled || version != lastSeen else { return .unchanged }
        hasPolled = true
        lastSeen = version
        do {
            return .updated(try RevocationList.read(path))
        } catch {
            return .failed(error)
        }
    }

    /// What tells two versions of a file apart without reading it.
    private struct FileVersion: Equatable {
        var seconds: Int
        var nanoseconds: Int
        var size: Int64
        var inode: UInt64

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            #if canImport(Darwin)
            let modified = info.st_mtimespec
            #else
            let modified = info.st_mtim
            #endif
            seconds = Int(modified.tv_sec)
            nanoseconds = Int(modified.tv_nsec)
            size = Int64(info.st_size)
            inode = UInt64(info.st_ino)
        }
    }
}
