import ArgumentParser
import Foundation

/// Talks to a running node's control socket: one command, one JSON answer.
enum ControlClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends `command` and returns the answer's bytes. Fails with a message that says what to check.
    static func request(_ command: String, path: String, timeoutSeconds: Int = 5) throws -> Data {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw Failure(description: "control socket path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            throw Failure(description: "no node answers at \(path) (\(reason)); is `wow run` running, and is this its --control path?")
        }
        let line = Array((command + "\n").utf8)
        guard write(fd, line, line.count) == line.count else {
            throw Failure(description: "cannot send to \(path): \(String(cString: strerror(errno)))")
        }
        var answer = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n == 0 { break }
            guard n > 0 else { throw Failure(description: "no answer from \(path): \(String(cString: strerror(errno)))") }
            answer.append(contentsOf: chunk[..<n])
            guard answer.count <= 16 << 20 else { throw Failure(description: "answer from \(path) is too large") }
        }
        return answer
    }

    /// The default control socket path for a node name.
    static func defaultPath(forNode name: String) -> String {
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        let directory = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"] ?? "/tmp"
        return "\(directory)/wow-\(safe).sock"
    }
}

/// How a command finds the running node it asks: `--control PATH` or `--name NODE` (its default socket).
struct NodeControlOptions: ParsableArguments {
    @Option(help: "The node's control socket path.")
    var control: String?

    @Option(help: "The node's name, to find its default control socket.")
    var name: String?

    func validate() throws {
        guard (control == nil) != (name == nil) else { throw ValidationError("give either --control PATH or --name NODE") }
    }

    /// The control socket to ask.
    var path: String { control ?? ControlClient.defaultPath(forNode: name ?? "") }
}
