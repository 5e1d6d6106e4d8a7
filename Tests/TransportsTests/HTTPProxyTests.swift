@testable import Transports
import WOWKit
import XCTest

/// Proxy URLs: what parses, what is refused and why, and the `CONNECT` request they make.
final class HTTPProxyTests: XCTestCase {
    private func reason(_ text: String) -> String {
        do {
            let proxy = try HTTPProxy(parsing: text)
            return "parsed as \(proxy)"
        } catch {
            return error.description
        }
    }

    func testGoodURLs() throws {
        let plain = try HTTPProxy(parsing: "http://198.18.0.9:3128")
        XCTAssertEqual(plain, HTTPProxy(host: "198.18.0.9", port: 3128))
        XCTAssertNil(plain.username)
        XCTAssertNil(plain.authorization)
        XCTAssertEqual(plain.endpoint?.description, "198.18.0.9:3128")

        XCTAssertEqual(try HTTPProxy(parsing: "HTTP://198.18.0.9:3128/"), plain, "scheme in any case, a bare / allowed")
        XCTAssertEqual(try HTTPProxy(parsing: "198.18.0.9:3128"), plain, "no scheme means http, as curl takes it")
        XCTAssertEqual(try HTTPProxy(parsing: " http://198.18.0.9 ").port, 80, "port 80 when none is given")

        let named = try HTTPProxy(parsing: "http://proxy.corp-1.example:8080")
        XCTAssertEqual(named.host, "proxy.corp-1.example")
        XCTAssertNil(named.endpoint, "a host name is resolved when dialing")

        let v6 = try HTTPProxy(parsing: "http://[2001:db8::9]:3128")
        XCTAssertEqual(v6.host, "2001:db8::9")
        XCTAssertEqual(v6.description, "[2001:db8::9]:3128")
        XCTAssertNotNil(v6.endpoint)

        let withCredentials = try HTTPProxy(parsing: "http://alice:s3cret%3Ax%40y@198.18.0.9:3128")
        XCTAssertEqual(withCredentials.username, "alice")
        XCTAssertEqual(withCredentials.password, "s3cret:x@y")
        XCTAssertEqual(withCredentials.description, "198.18.0.9:3128", "never the credentials")
        XCTAssertEqual(withCredentials.authorization, "Basic YWxpY2U6czNjcmV0OnhAeQ==")
        XCTAssertEqual(try HTTPProxy(parsing: "http://bob@198.18.0.9:3128").authorization, "Basic Ym9iOg==", "user, empty password")
        XCTAssertEqual(try HTTPProxy(parsing: "http://carol:p@ss@198.18.0.9:3128").password, "p@ss", "the last @ ends the credentials")
    }

    func testBadURLsSayWhy() {
        XCTAssertTrue(reason("").contains("empty"), reason(""))
        XCTAssertTrue(reason("https://198.18.0.9:3128").contains("https://"), reason("https://198.18.0.9:3128"))
        XCTAssertTrue(reason("socks5://198.18.0.9:1080").contains("SOCKS"), reason("socks5://198.18.0.9:1080"))
        XCTAssertTrue(reason("ftp://198.18.0.9:21").contains("unknown scheme 'ftp'"), reason("ftp://198.18.0.9:21"))
        XCTAssertTrue(reason("http://198.18.0.9:3128/path").contains("no path"), reason("http://198.18.0.9:3128/path"))
        XCTAssertTrue(reason("http://198.18.0.9:0").contains("port"), reason("http://198.18.0.9:0"))
        XCTAssertTrue(reason("http://198.18.0.9:99999").contains("port"), reason("http://198.18.0.9:99999"))
        XCTAssertTrue(reason("http://198.18.0.9:abc").contains("port"), reason("http://198.18.0.9:abc"))
        XCTAssertTrue(reason("http://2001:db8::9:3128").contains("brackets"), reason("http://2001:db8::9:3128"))
        XCTAssertTrue(reason("http://[198.18.0.9]:3128").contains("not an IPv6"), reason("http://[198.18.0.9]:3128"))
        XCTAssertTrue(reason("http://[2001:db8::9:3128").contains("']'"), reason("http://[2001:db8::9:3128"))
        XCTAssertTrue(reason("http://:3128").contains("host is empty"), reason("http://:3128"))
        XCTAssertTrue(reason("http://bad host:3128").contains("neither"), reason("http://bad host:3128"))
        XCTAssertTrue(reason("http://a..b:3128").contains("neither"), reason("http://a..b:3128"))
        XCTAssertTrue(reason("http://@198.18.0.9:3128").contains("user name"), reason("http://@198.18.0.9:3128"))
        XCTAssertTrue(reason("http://u:%zz@198.18.0.9:3128").contains("%-escape"), reason("http://u:%zz@198.18.0.9:3128"))
        // The error never repeats a password.
        XCTAssertFalse(reason("http://alice:s3cret@198.18.0.9:3128/x").contains("s3cret"), reason("http://alice:s3cret@198.18.0.9:3128/x"))
        XCTAssertTrue(reason("http://alice:s3cret@198.18.0.9:3128/x").contains("http://***@198.18.0.9:3128/x"))
    }

    func testConnectRequest() throws {
        let target = try IPEndpoint(parsing: "198.18.0.1:443")
        XCTAssertEqual(HTTPProxy(host: "198.18.0.9", port: 3128).connectRequest(to: target),
                       "CONNECT 198.18.0.1:443 HTTP/1.1\r\nHost: 198.18.0.1:443\r\n\r\n")
        XCTAssertEqual(HTTPProxy(host: "198.18.0.9", port: 3128, username: "alice", password: "pw").connectRequest(
            to: try IPEndpoint(parsing: "[2001:db8::1]:443")),
            "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\nProxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n")
    }

    func testRefusalsNameTheProxyTheTargetAndTheStatus() {
        let refused = HTTPProxyError.refused(proxy: "198.18.0.9:3128", target: "198.18.0.1:443", status: 407,
                                             reason: "Proxy Authentication Required")
        XCTAssertEqual(refused.description, "proxy 198.18.0.9:3128 refused CONNECT to 198.18.0.1:443: 407 Proxy "
                       + "Authentication Required (the proxy wants a user and password: check them, or give them as "
                       + "http://user:password@198.18.0.9:3128)")
        XCTAssertTrue(HTTPProxyError.refused(proxy: "p:1", target: "t:2", status: 401, reason: "Unauthorized").description
            .hasPrefix("proxy p:1 refused CONNECT to t:2: 401 Unauthorized (the proxy wants a user and password"))
        XCTAssertTrue(HTTPProxyError.refused(proxy: "p:1", target: "t:2", status: 403, reason: "Forbidden").description
            .hasPrefix("proxy p:1 refused CONNECT to t:2: 403 Forbidden (the proxy's rules forbid"))
        XCTAssertEqual(HTTPProxyError.refused(proxy: "p:1", target: "t:2", status: 502, reason: "").description,
                       "proxy p:1 refused CONNECT to t:2: 502")
    }
}
