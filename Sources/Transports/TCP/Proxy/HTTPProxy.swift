import Foundation
import NIOCore

/// An HTTP proxy that the stream transports (`tcp`, `tls`) dial their edges through: the edge's TCP connection
/// goes to the proxy, which is asked to `CONNECT` to the peer; once it answers 2xx the connection carries the
/// edge (for `tls`, the TLS handshake starts only then, end to end with the peer). The common way out of a
/// corporate network whose only exit is squid or tinyproxy.
///
/// Written as a URL, `http://[user:password@]host[:port]` (port 80 if absent; `http://` may be left out, as
/// curl allows): `host` is an IP literal (IPv6 in brackets) or a DNS name, resolved each time an edge is dialed.
/// User and password travel as `Proxy-Authorization: Basic` and may be percent-encoded (`p%40ss` for `p@ss`).
/// Only plain HTTP to the proxy: `https://` (TLS to the proxy itself) and SOCKS are refused with a reason.
///
/// `description` is `host:port` and never shows the credentials, so a proxy can be logged and named in
/// errors as it is.
public struct HTTPProxy: Hashable, Sendable, CustomStringConvertible {
    /// The proxy's host: an IP literal (without brackets) or a DNS name.
    public let host: String
    /// The proxy's port.
    public let port: Int
    /// The user name for `Proxy-Authorization: Basic`, percent-decoded; nil without credentials.
    public let username: String?
    /// The password, percent-decoded; nil without credentials (empty when the URL gives `user@`).
    let password: String?

    /// The port assumed when the URL gives none (HTTP's, as Go's and Python's HTTP clients assume).
    public static let defaultPort = 80

    /// A proxy at `host:port`, with optional credentials. `host` is not checked: use `init(parsing:)` for text
    /// from outside.
    public init(host: String, port: Int, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = username == nil ? nil : (password ?? "")
    }

    /// Parses `http://[user:password@]host[:port][/]`; the error's reason says what is wrong and how to
    /// write it.
    public init(parsing text: String) throws(HTTPProxyError) {
        func bad(_ reason: String) -> HTTPProxyError { .badURL(text, reason: reason) }
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { throw bad("it is empty; write http://host:port") }
        if let separator = rest.range(of: "://") {
            let scheme = rest[..<separator.lowerBound].lowercased()
            switch scheme {
            case "http": break
            case "https":
                throw bad("TLS to the proxy itself (https://) is not supported; give the proxy's plain HTTP port, as in http://host:3128")
            case let socks where socks.hasPrefix("socks"):
                throw bad("SOCKS proxies are not supported, only HTTP proxies that allow CONNECT (http://host:port)")
            default:
                throw bad("unknown scheme '\(scheme)'; write http://host:port")
            }
            rest = rest[separator.upperBound...]
        }
        // Anything after the authority: only a bare "/" is allowed (a proxy URL has no path).
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            guard rest[slash...] == "/" else {
                throw bad("a proxy URL has no path or query ('\(rest[slash...])'); write http://host:port")
            }
            rest = rest[..<slash]
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let user: Substring
            if let colon = userinfo.firstIndex(of: ":") {
                user = userinfo[..<colon]
                password = Self.percentDecoded(userinfo[userinfo.index(after: colon)...])
                guard password != nil else { throw bad("the password has a bad %-escape; write %XX with two hex digits") }
            } else {
                user = userinfo
                password = ""
            }
            guard let decoded = Self.percentDecoded(user), !decoded.isEmpty else {
                throw bad("the user name before '@' is empty or has a bad %-escape")
            }
            username = decoded
        }
        let hostText: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw bad("an IPv6 address needs a closing ']', as in http://[2001:db8::1]:3128")
            }
            hostText = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("expected ':port' after ']'") }
                portText = after.dropFirst()
            }
            guard (try? SocketAddress(ipAddress: String(hostText), port: 0))?.protocol == .inet6 else {
                throw bad("'\(hostText)' in brackets is not an IPv6 address")
            }
        } else {
            if let colon = rest.firstIndex(of: ":") {
                hostText = rest[..<colon]
                let after = rest[rest.index(after: colon)...]
                guard !after.contains(":") else {
                    throw bad("write an IPv6 address in brackets, as in http://[2001:db8::1]:3128")
                }
                portText = after
            } else {
                hostText = rest
            }
            guard !hostText.isEmpty else { throw bad("the host is empty; write http://host:port") }
            guard Self.isIPv4Literal(hostText) || Self.isHostName(hostText) else {
                throw bad("'\(hostText)' is neither an IP address nor a host name")
            }
        }
        var port = Self.defaultPort
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw bad("the port must be a number 1-65535, got '\(portText)'")
            }
            port = number
        }
        self.init(host: String(hostText), port: port, username: username, password: password)
    }

    /// The proxy's socket address when `host` is an IP literal; nil for a DNS name (resolved when dialing).
    var endpoint: IPEndpoint? {
        (try? SocketAddress(ipAddress: host, port: port)).map(IPEndpoint.init)
    }

    /// `host:port`, IPv6 in brackets; never the credentials.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The `Proxy-Authorization` header's value, `Basic <base64 of user:password>`; nil without credentials.
    var authorization: String? {
        guard let username else { return nil }
        return "Basic " + Data("\(username):\(password ?? "")".utf8).base64EncodedString()
    }

    /// The request that opens a tunnel to `target`: the `CONNECT` line, `Host`, and `Proxy-Authorization`
    /// when the proxy has credentials, ending with the blank line.
    func connectRequest(to target: IPEndpoint) -> String {
        let authority = target.description
        var request = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
        if let authorization { request += "Proxy-Authorization: \(authorization)\r\n" }
        return request + "\r\n"
    }

    // MARK: Parsing helpers

    private static func isIPv4Literal(_ text: Substring) -> Bool {
        (try? SocketAddress(ipAddress: String(text), port: 0))?.protocol == .inet
    }

    /// A DNS name: labels of letters, digits, '-' and '_', separated by single dots, 253 characters at most.
    private static func isHostName(_ text: Substring) -> Bool {
        guard text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && label.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }
        }
    }

    /// `text` with every `%XX` replaced by its byte, as UTF-8; nil for a bad escape or bytes that are not UTF-8.
    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let escape = iterator.prefix(2)
            guard escape.count == 2, escape.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
                  let value = UInt8(String(decoding: escape, as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
            iterator = iterator.dropFirst(2)
        }
        return String(bytes: bytes, encoding: .utf8)
    }
}
