import WOWKit

/// Decoding of the settings the stream transports (`tcp`, `tls`) share: `listen`, `advertise`,
/// `connect_timeout_ms` and `proxy`, checked as they are read so that an error names the key.
extension KeyedDecodingContainer {
    /// `listen`: an IP literal with a port (`0.0.0.0:4001`, `[::]:4001`).
    func decodeListenAddress(forKey key: Key) throws -> String? {
        guard let listen = try decodeIfPresent(String.self, forKey: key) else { return nil }
        do {
            _ = try IPEndpoint(parsing: listen)
        } catch {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "'\(listen)' is not a listen address: \(error.reason)")
        }
        return listen
    }

    /// `advertise`: URIs of `scheme` with an IP literal and a port.
    func decodeAdvertisedURIs(forKey key: Key, scheme: String) throws -> [TransportURI]? {
        guard let texts = try decodeIfPresent([String].self, forKey: key) else { return nil }
        var uris: [TransportURI] = []
        for text in texts {
            do {
                let uri = try TransportURI(text)
                _ = try IPEndpoint(uri: uri, scheme: scheme)
                uris.append(uri)
            } catch {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: self, debugDescription: "'\(text)' is not a \(scheme) URI: \(error)")
            }
        }
        return uris
    }

    /// `connect_timeout_ms`: 1 ms to 10 minutes.
    func decodeConnectTimeout(forKey key: Key) throws -> Int? {
        guard let milliseconds = try decodeIfPresent(Int.self, forKey: key) else { return nil }
        guard (1...600_000).contains(milliseconds) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "must be 1-600000 milliseconds, got \(milliseconds)")
        }
        return milliseconds
    }

    /// `proxy`: `none`, or an HTTP proxy URL `http://[user:password@]host[:port]`.
    func decodeProxy(forKey key: Key) throws -> ProxySetting? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        do {
            return try ProxySetting(parsing: text)
        } catch {
            let reason: String
            if case .badURL(let url, let why) = error {
                reason = "'\(HTTPProxyError.withoutCredentials(url))' is not a proxy: \(why); or write `none` to connect directly"
            } else {
                reason = error.description
            }
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: reason)
        }
    }
}
