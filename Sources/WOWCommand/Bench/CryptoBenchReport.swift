/// The measurements of one `wow bench crypto` run (`--json` prints this object).
struct CryptoBenchReport: Codable, Sendable {
    struct Handshake: Codable, Sendable {
        /// Complete handshakes timed.
        var count: Int
        var mean_us: Double
        var p50_us: Double
        var p99_us: Double
        var handshakes_per_s: Double
    }

    /// One operation at one packet size.
    struct Measurement: Codable, Sendable {
        /// `memcpy`, `channel seal`, `channel open`, `channel seal+open`, `chachapoly seal` ... `aesgcm seal+open`.
        var name: String
        var packets: Int
        var packets_per_s: Double
        /// Plaintext bits per second, over 1e9.
        var gbit_per_s: Double
        var ns_per_packet: Double
        /// Time per packet over the memcpy baseline's at the same size.
        var time_vs_memcpy: Double
    }

    struct Size: Codable, Sendable {
        /// Plaintext bytes per packet.
        var bytes: Int
        var measurements: [Measurement]
        /// Time per packet of the channel's seal+open over raw AES.GCM's, the AEAD it uses (the channel's own overhead).
        var channel_vs_raw_aead: Double
        /// AES.GCM seal+open packets/s over ChaChaPoly's (above 1: AES.GCM is faster).
        var aesgcm_speedup_over_chachapoly: Double
    }

    var seconds_per_measurement: Double
    /// `release` or `debug`: numbers from a debug build mean little.
    var build: String
    var handshake: Handshake
    var sizes: [Size]
    /// `AES.GCM` or `ChaChaPoly`: the faster for seal+open over all sizes.
    var faster_aead: String
    var aesgcm_speedup_over_chachapoly_geomean: Double
}
