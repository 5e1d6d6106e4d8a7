import NIOCore

/// Reads an HTTP proxy's answer to `CONNECT`: the status line and the header lines up to the blank line, fed
/// in whatever pieces the connection delivers. No I/O: `HTTPConnectHandler` feeds it and acts on the result.
///
/// - `parse(_:)` consumes bytes up to the end of the answer's header and no further: what is left in the
///   buffer after a complete answer belongs to the tunnel. It returns nil until the header is complete.
/// - Informational answers (1xx) are skipped; the next answer is read.
/// - The answer's body (a refusal usually has an HTML page) is not read: the connection is closed anyway.
/// - Lines may end in CRLF or a bare LF. Anything that is not `HTTP/1.x NNN reason` then `Name: value` lines,
///   or a header over `maximumHeaderBytes`, is an error; after an error the parser accepts nothing more.
struct HTTPConnectResponseParser {
    /// A complete answer's status.
    struct Answer: Equatable {
        /// The status code, 100-999.
        var status: Int
        /// The reason phrase, as sent (control characters replaced, at most 120 characters).
        var reason: String

        /// Whether the proxy opened the tunnel.
        var isSuccess: Bool { (200...299).contains(status) }
    }

    /// What is wrong with an answer.
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// The first line is not an HTTP/1.x status line.
        case notHTTP(firstBytes: String)
        /// A header line has no ':'.
        case badHeaderLine(String)
        /// The header goes on past `maximumHeaderBytes` without its blank line.
        case headerTooLong(limit: Int)
        /// `parse` was called again after an error.
        case alreadyFailed

        var description: String {
            switch self {
            case .notHTTP(let first): return "not an HTTP response (it begins '\(first)')"
            case .badHeaderLine(let line): return "a header line without ':' ('\(line)')"
            case .headerTooLong(let limit): return "its header goes on past \(limit) bytes"
            case .alreadyFailed: return "the answer was already bad"
            }
        }
    }

    /// The most header bytes of one answer (status line included) read before giving up. Real proxies send a
    /// few hundred.
    static let maximumHeaderBytes = 16 * 1024

    private enum State {
        case statusLine
        case headers(Answer)
        case done
        case failed
    }

    private var state = State.statusLine
    /// The line read so far (without its end).
    private var line: [UInt8] = []
    /// Header bytes of the current answer consumed so far.
    private var headerBytes = 0

    /// The status of the answer being read, once its status line is complete: for a proxy that closes the
    /// connection in the middle of a refusal's header, the refusal is still known.
    private(set) var statusSoFar: Answer?

    /// Consumes bytes of `buffer` up to the end of the answer's header; returns the answer once complete, nil
    /// while more is needed. Throws `Failure` for anything that is not an HTTP answer's header.
    mutating func parse(_ buffer: inout ByteBuffer) throws(Failure) -> Answer? {
        while true {
            switch state {
            case .done:
                return nil
            case .failed:
                throw .alreadyFailed
            case .statusLine, .headers:
                break
            }
            guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
            headerBytes += 1
            guard headerBytes <= Self.maximumHeaderBytes else { return try fail(.headerTooLong(limit: Self.maximumHeaderBytes)) }
            guard byte == UInt8(ascii: "\n") else {
                line.append(byte)
                // A status line is checked as soon as it cannot be one, so that garbage fails at once.
                if case .statusLine = state, !Self.couldStartStatusLine(line) {
                    return try fail(.notHTTP(firstBytes: Self.printable(line.prefix(16))))
                }
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            let complete = line
            line.removeAll(keepingCapacity: true)
            switch state {
            case .statusLine:
                guard let answer = Self.statusLine(complete) else {
                    return try fail(.notHTTP(firstBytes: Self.printable(complete.prefix(16))))
                }
                statusSoFar = answer
                state = .headers(answer)
            case .headers(let answer):
                if complete.isEmpty {
                    statusSoFar = nil
                    headerBytes = 0
                    if (100...199).contains(answer.status) {
                        state = .statusLine
                        continue
                    }
                    state = .done
                    return answer
                }
                let startsWithSpace = complete.first == UInt8(ascii: " ") || complete.first == UInt8(ascii: "\t")
                guard complete.contains(UInt8(ascii: ":")) || startsWithSpace else {
                    return try fail(.badHeaderLine(Self.printable(complete.prefix(40))))
                }
            case .done, .failed:
                return nil
            }
        }
    }

    private mutating func fail(_ failure: Failure) throws(Failure) -> Answer? {
        state = .failed
        throw failure
    }

    private static let httpPrefix = Array("HTTP/1.".utf8)

    /// Whether `bytes` can still grow into a status line: they agree with `HTTP/1.` as far as they go.
    private static func couldStartStatusLine(_ bytes: [UInt8]) -> Bool {
        zip(bytes, httpPrefix).allSatisfy { $0 == $1 }
    }

    /// `HTTP/1.x NNN reason` (the reason may be empty or missing).
    private static func statusLine(_ bytes: [UInt8]) -> Answer? {
        // "HTTP/1.1 200" is 12 bytes.
        guard bytes.count >= 12, bytes.starts(with: httpPrefix),
              (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[7]), bytes[8] == UInt8(ascii: " ")
        else { return nil }
        let code = bytes[9..<12]
        guard code.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let status = Int(String(decoding: code, as: UTF8.self)), status >= 100
        else { return nil }
        guard bytes.count == 12 || bytes[12] == UInt8(ascii: " ") else { return nil }
        let reason = bytes.count > 13 ? printable(bytes[13...].prefix(120)) : ""
        return Answer(status: status, reason: reason)
    }

    /// Bytes as text for a message: printable ASCII kept, anything else as '?'.
    private static func printable<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes.map { (0x20...0x7e).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
