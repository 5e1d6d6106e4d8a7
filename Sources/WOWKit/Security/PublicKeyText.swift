/// An Ed25519 public key as people copy it: 64 hex digits (`wow keygen` prints it, `wow cert issue
/// --public-key` takes it).
public enum PublicKeyText {
    /// Lowercase hex.
    public static func encode(_ key: [UInt8]) -> String { HexText.encode(key) }

    /// The 32 bytes of `text`; nil unless it is exactly 64 hex digits.
    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.count == 64, let bytes = HexText.decode(text) else { return nil }
        return bytes
    }
}
