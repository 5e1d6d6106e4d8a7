#if canImport(CCryptoBoringSSL)
internal import CCryptoBoringSSL
#endif
import Crypto
import NIOCore

/// The AES-256-GCM key of one direction of a secure session, ready to seal and open frames in place: made
/// once when the session's keys are derived, used for every frame under it (docs/security.md,
/// "Edges", step 4). The sealed layout is the one swift-crypto's `AES.GCM.seal` gives for the same key, nonce and
/// associated data, and each opens what the other seals (`SessionKeyTests`).
///
/// Where swift-crypto runs on BoringSSL (Linux), the key is a BoringSSL `EVP_AEAD_CTX` (the AEAD swift-crypto
/// itself uses there, reached through its C module) with the AES key schedule done once: sealing encrypts in
/// the frame's own bytes and opening writes the plaintext straight into the caller's buffer, so neither
/// allocates. Elsewhere (Apple platforms, where swift-crypto is CryptoKit) it goes through `AES.GCM`, which
/// returns new `Data` that is copied into place.
///
/// Immutable after `init`; BoringSSL documents seal and open on one context as safe to call concurrently.
final class SessionKey: @unchecked Sendable {
    static let keySize = 32
    static let nonceSize = 12
    static let tagSize = 16

    #if canImport(CCryptoBoringSSL)
    private let context: UnsafeMutablePointer<EVP_AEAD_CTX>

    /// `key` must be 32 bytes (the HKDF output is).
    init(_ key: SymmetricKey) {
        precondition(key.bitCount == 256, "an AES-256-GCM key is 32 bytes")
        // Fails only when out of memory or for a wrong key size, ruled out above.
        context = key.withUnsafeBytes { bytes in
            CCryptoBoringSSL_EVP_AEAD_CTX_new(CCryptoBoringSSL_EVP_aead_aes_256_gcm(),
                                             bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                                             SessionKey.tagSize)!
        }
    }

    deinit { CCryptoBoringSSL_EVP_AEAD_CTX_free(context) }
    #else
    private let key: SymmetricKey

    init(_ key: SymmetricKey) {
        precondition(key.bitCount == 256, "an AES-256-GCM key is 32 bytes")
        self.key = key
    }
    #endif

    /// Seals `frame` in place: its readable bytes are `headerLength` bytes of associated data (left as they
    /// are) then the plaintext, which is replaced by its ciphertext, and the 16-byte tag is appended. Writes
    /// into the buffer's own storage when it holds it alone and has 16 bytes of room after the plaintext.
    func seal(_ frame: inout ByteBuffer, headerLength: Int, counter: UInt64) {
        let plaintextLength = frame.readableBytes - headerLength
        precondition(plaintextLength >= 0, "the frame is shorter than its header")
        #if canImport(CCryptoBoringSSL)
        // Room for the tag, which the sealing writes (not zeroed first: one pass fewer over it).
        frame.writeWithUnsafeMutableBytes(minimumWritableBytes: SessionKey.tagSize) { _ in SessionKey.tagSize }
        let sealed = frame.withUnsafeMutableReadableBytes { bytes in
            let header = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let body = header + headerLength
            return SessionKey.withNonce(counter) { nonce in
                var tagLength = 0
                return CCryptoBoringSSL_EVP_AEAD_CTX_seal_scatter(
                    context, body, body + plaintextLength, &tagLength, SessionKey.tagSize,
                    nonce, SessionKey.nonceSize, body, plaintextLength, nil, 0, header, headerLength)
            }
        }
        // Fails only for sizes fixed here (nonce, tag) or a plaintext over 64 GiB.
        precondition(sealed == 1, "AES-GCM sealing failed")
        #else
        let box = frame.withUnsafeReadableBytes { bytes in
            try! AES.GCM.seal(bytes[headerLength...], using: key, nonce: SessionKey.nonce(counter),
                              authenticating: bytes[..<headerLength])
        }
        frame.moveWriterIndex(to: frame.readerIndex + headerLength)
        frame.writeBytes(box.ciphertext)
        frame.writeBytes(box.tag)
        #endif
    }

    /// Opens a sealed frame: `frame`'s readable bytes are `headerLength` bytes of associated data, the
    /// ciphertext, then the 16-byte tag. On success the plaintext replaces `plaintext`'s contents (written into
    /// its storage when it holds it alone and has room) and the result is true; on a wrong tag, false, and
    /// `plaintext` is left empty.
    func open(_ frame: ByteBuffer, headerLength: Int, counter: UInt64, into plaintext: inout ByteBuffer) -> Bool {
        let ciphertextLength = frame.readableBytes - headerLength - SessionKey.tagSize
        plaintext.clear()
        guard ciphertextLength >= 0 else { return false }
        #if canImport(CCryptoBoringSSL)
        return frame.withUnsafeReadableBytes { bytes in
            let header = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let body = header + headerLength
            var opened = false
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: ciphertextLength) { output in
                let out = output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafeMutablePointer(mutating: body)
                opened = SessionKey.withNonce(counter) { nonce in
                    CCryptoBoringSSL_EVP_AEAD_CTX_open_gather(
                        context, out, nonce, SessionKey.nonceSize, body, ciphertextLength,
                        body + ciphertextLength, SessionKey.tagSize, header, headerLength)
                } == 1
                return opened ? ciphertextLength : 0
            }
            return opened
        }
        #else
        do {
            let opened = try frame.withUnsafeReadableBytes { bytes in
                let box = try AES.GCM.SealedBox(nonce: SessionKey.nonce(counter),
                                                ciphertext: bytes[headerLength..<(bytes.count - SessionKey.tagSize)],
                                                tag: bytes.suffix(SessionKey.tagSize))
                return try AES.GCM.open(box, using: key, authenticating: bytes[..<headerLength])
            }
            plaintext.writeBytes(opened)
            return true
        } catch {
            return false
        }
        #endif
    }

    /// The nonce of frame `counter`: 4 zero bytes, then the counter little-endian; on the stack.
    private static func withNonce<Result>(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> Result) -> Result {
        let words: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: counter).littleEndian,
                                               UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return Swift.withUnsafeBytes(of: words) { raw in body(raw.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// The same nonce as swift-crypto's type.
    static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
        withNonce(counter) { pointer in
            try! AES.GCM.Nonce(data: UnsafeBufferPointer(start: pointer, count: nonceSize))  // 12 bytes: a size it accepts.
        }
    }
}
