/// Why a proxy could not be used: a bad proxy URL (in the settings or the environment), or a proxy that did
/// not open the tunnel an edge asked for. The descriptions name the proxy (`host:port`, never the
/// credentials) and say what to do; a refused or failed `CONNECT` becomes the reason of the edge's
/// `EdgeError.unreachable`.
public enum HTTPProxyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text is not an `http://[user:password@]host[:port]` proxy URL.
    case badURL(String, reason: String)
    /// An environment variable (`HTTPS_PROXY`, `https_proxy`) holds a bad proxy URL.
    case badEnvironment(variable: String, reason: String)
    /// The proxy answered `CONNECT` with a status other than 2xx (407: it wants credentials; 401: tinyproxy's
    /// answer to wrong ones; 403: its rules forbid the target).
    case refused(proxy: String, target: String, status: Int, reason: String)
    /// The proxy's answer is not an HTTP response, or its header is longer than the parser accepts.
    case badAnswer(proxy: String, target: String, reason: String)
    /// The proxy closed the connection before it answered.
    case closedBeforeAnswer(proxy: String, target: String)

    public var description: String {
        switch self {
        case .badURL(let text, let reason):
            return "proxy '\(Self.withoutCredentials(text))': \(reason)"
        case .badEnvironment(let variable, let reason):
            return "\(variable) in the environment: \(reason); fix it, or give the transport `proxy: none` to ignore it"
        case .refused(let proxy, let target, let status, let reason):
            var text = "proxy \(proxy) refused CONNECT to \(target): \(status)"
            if !reason.isEmpty { text += " \(reason)" }
            switch status {
            case 401, 407: text += " (the proxy wants a user and password: check them, or give them as http://user:password@\(proxy))"
            case 403: text += " (the proxy's rules forbid this target; many proxies allow CONNECT only to port 443)"
            default: break
            }
            return text
        case .badAnswer(let proxy, let target, let reason):
            return "proxy \(proxy) gave a bad answer to CONNECT to \(target): \(reason)"
        case .closedBeforeAnswer(let proxy, let target):
            return "proxy \(proxy) closed the connection before answering CONNECT to \(target)"
        }
    }

    /// A proxy URL with any `user:password@` replaced by `***@`, so that an error never shows a password.
    static func withoutCredentials(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let start = text.range(of: "://")?.upperBound ?? text.startIndex
        guard start <= at else { return text }
        return String(text[..<start]) + "***" + String(text[at...])
    }
}
