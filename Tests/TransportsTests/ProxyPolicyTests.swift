@testable import Transports
import WOWKit
import XCTest

/// Which proxy an outbound edge uses: the `proxy` setting (tcp and tls), `HTTPS_PROXY` and `NO_PROXY` when it
/// is absent (tls only), `proxy: none`; and the settings' errors.
final class ProxyPolicyTests: XCTestCase {
    private let proxy = HTTPProxy(host: "198.18.0.9", port: 3128)
    private func endpoint(_ text: String) throws -> IPEndpoint { try IPEndpoint(parsing: text) }

    private func tlsPolicy(_ environment: [String: String], setting: ProxySetting = .unset) throws -> ProxyPolicy {
        try ProxyPolicy(setting: setting, followsEnvironment: true, environment: environment)
    }

    func testSettingWinsOverTheEnvironment() throws {
        let environment = ["HTTPS_PROXY": "http://198.18.0.99:8080"]
        let given = try tlsPolicy(environment, setting: .http(proxy))
        XCTAssertEqual(given.proxy(for: try endpoint("198.18.0.1:443")), proxy)
        XCTAssertEqual(given.proxy(for: try endpoint("127.0.0.1:443")), proxy, "a configured proxy takes loopback too")
        XCTAssertEqual(given.source, "settings")
        XCTAssertNil(try tlsPolicy(environment, setting: .direct).proxy(for: try endpoint("198.18.0.1:443")), "proxy: none ignores it")
    }

    func testEnvironmentConvention() throws {
        let upper = try tlsPolicy(["HTTPS_PROXY": "http://198.18.0.9:3128", "https_proxy": "http://198.18.0.99:1"])
        XCTAssertEqual(upper.proxy(for: try endpoint("198.18.0.1:443")), proxy)
        XCTAssertEqual(upper.source, "HTTPS_PROXY")
        let lower = try tlsPolicy(["HTTPS_PROXY": "", "https_proxy": "198.18.0.9:3128"])
        XCTAssertEqual(lower.proxy(for: try endpoint("198.18.0.1:443")), proxy, "an empty value counts as unset")
        XCTAssertEqual(lower.source, "https_proxy")
        XCTAssertNil(try tlsPolicy(["HTTP_PROXY": "http://198.18.0.9:3128"]).proxy, "HTTP_PROXY is not for tls")
        XCTAssertNil(try tlsPolicy([:]).proxy)
        XCTAssertNil(upper.proxy(for: try endpoint("127.0.0.1:443")), "loopback peers directly")
        XCTAssertNil(upper.proxy(for: try endpoint("[::1]:443")))

        // tcp follows only its own setting.
        let tcp = try ProxyPolicy(setting: .unset, followsEnvironment: false, environment: ["HTTPS_PROXY": "http://198.18.0.9:3128"])
        XCTAssertNil(tcp.proxy)
    }

    func testNoProxyListsPeersToReachDirectly() throws {
        let policy = try tlsPolicy(["HTTPS_PROXY": "http://198.18.0.9:3128",
                                    "no_proxy": "localhost, .corp.example,198.18.0.5, 198.19.0.0/16,[2001:db8::5], 198.18.0.7:443, junk/99"])
        XCTAssertNil(policy.proxy(for: try endpoint("198.18.0.5:443")))
        XCTAssertNil(policy.proxy(for: try endpoint("198.19.200.1:443")))
        XCTAssertNil(policy.proxy(for: try endpoint("[2001:db8::5]:443")))
        XCTAssertNil(policy.proxy(for: try endpoint("198.18.0.7:8443")), "a port in NO_PROXY is ignored")
        XCTAssertEqual(policy.proxy(for: try endpoint("198.18.0.6:443")), proxy)
        XCTAssertEqual(policy.proxy(for: try endpoint("198.20.0.1:443")), proxy)
        XCTAssertEqual(policy.proxy(for: try endpoint("[2001:db8::6]:443")), proxy)

        XCTAssertNil(try tlsPolicy(["HTTPS_PROXY": "http://198.18.0.9:3128", "NO_PROXY": "*"]).proxy(for: try endpoint("198.18.0.1:443")))
        XCTAssertEqual(ProxyPolicy.exemptions("198.18.0.0/15"), [.network([198, 18, 0, 0], prefixLength: 15)])
        XCTAssertTrue(ProxyPolicy.Exemption.network([198, 18, 0, 0], prefixLength: 15).matches([198, 19, 255, 1]))
        XCTAssertFalse(ProxyPolicy.Exemption.network([198, 18, 0, 0], prefixLength: 15).matches([198, 20, 0, 1]))
        XCTAssertEqual(ProxyPolicy.exemptions("example.com, 198.18.0.0/33, 198.18.0.0/x, ::1/129"), [], "names and bad prefixes are skipped")
    }

    func testBadEnvironmentProxyIsAnErrorNamingTheVariable() {
        XCTAssertThrowsError(try tlsPolicy(["https_proxy": "socks5://alice:pw@198.18.0.9:1080"])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.hasPrefix("https_proxy in the environment: proxy 'socks5://***@198.18.0.9:1080': SOCKS"), text)
            XCTAssertTrue(text.contains("proxy: none"), text)
            XCTAssertFalse(text.contains("pw"), text)
        }
    }

    func testProxySettingDecoding() throws {
        func tls(_ yaml: String) throws -> TLSTransport.Settings {
            try PluginSettings(yaml: yaml).decode(TLSTransport.Settings.self, for: "tls")
        }
        func tcp(_ yaml: String) throws -> TCPTransport.Settings {
            try PluginSettings(yaml: yaml).decode(TCPTransport.Settings.self, for: "tcp")
        }
        XCTAssertEqual(try tls("listen: \"0.0.0.0:443\"").proxy, .unset)
        XCTAssertEqual(try tls("proxy: none").proxy, .direct)
        XCTAssertEqual(try tls("proxy: NONE").proxy, .direct)
        XCTAssertEqual(try tls("proxy: \"http://u:p@198.18.0.9:3128\"").proxy,
                       .http(HTTPProxy(host: "198.18.0.9", port: 3128, username: "u", password: "p")))
        XCTAssertEqual(try tcp("proxy: \"http://198.18.0.9:3128\"").proxy, .http(proxy))
        XCTAssertEqual(try tcp("{}").proxy, .unset)

        func reason(_ yaml: String) -> String {
            do {
                _ = try tls(yaml)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        let bad = reason("proxy: \"https://u:hunter2@198.18.0.9:3128\"")
        XCTAssertTrue(bad.contains("key 'proxy'") && bad.contains("https://") && bad.contains("none"), bad)
        XCTAssertFalse(bad.contains("hunter2"), bad)
        XCTAssertTrue(reason("proxy: [1, 2]").contains("proxy"), reason("proxy: [1, 2]"))
        XCTAssertTrue(reason("proxy: \"\"").contains("empty"), reason("proxy: \"\""))
    }
}
