import Foundation
/// The `proxy` setting of a stream transport (`tcp`, `tls`) as the config gives it; `ProxyPolicy` turns it,
/// with the environment, into the proxy each outbound edge uses.
///
/// ```yaml
/// proxy: "http://user:password@198.18.0.9:3128"   # every outbound edge through this HTTP proxy (CONNECT)
/// proxy: none                                      # directly, whatever HTTPS_PROXY says
/// ```
public enum ProxySetting: Equatable, Sendable {
    /// No `proxy` key: `tls` follows `HTTPS_PROXY` / `https_proxy` (with `NO_PROXY`); `tcp` connects
    /// directly.
    case unset
    /// `proxy: none`: connect directly, ignoring the environment.
    case direct
    /// `proxy: "http://..."`: every outbound edge through this proxy.
    case http(HTTPProxy)

    /// The YAML value of `proxy: none`.
    static let directKeyword = "none"

    /// Parses a `proxy` value: `none`, or an HTTP proxy URL (`HTTPProxy(parsing:)`).
    public init(parsing text: String) throws(HTTPProxyError) {
        if text.trimmingCharacters(in: .whitespaces).lowercased() == Self.directKeyword {
            self = .direct
        } else {
            self = .http(try HTTPProxy(parsing: text))
        }
    }
}
