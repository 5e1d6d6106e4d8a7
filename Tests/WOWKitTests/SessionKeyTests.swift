import Crypto
import NIOCore
import XCTest

@testable import WOWKit

/// `SessionKey`, the in-place AES-256-GCM of sealed frames: the bytes it seals are swift-crypto's for the same
/// key, nonce and header; each opens the other's; any tampering fails; sealing and opening write into the
/// buffers given, without moving them.
final class SessionKeyTests: XCTestCase {
    private let sizes = [0, 1, 15, 16, 17, 1_400, 9_000]
    private let counters: [UInt64] = [0, 1, 255, 1 << 32 | 5, UInt64.max - 1]

    /// 14 header bytes (the sealed frame's) then the plaintext, with `headroom` free bytes before them.
    private func frame(_ plaintext: [UInt8], counter: UInt64, headroom: Int = 0, tailroom: Int = 0) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: headroom + 14 + plaintext.count + tailroom)
        buffer.moveWriterIndex(to: headroom)
        buffer.moveReaderIndex(to: headroom)
        buffer.writeBytes([WireFormat.version, SecureFrame.sealedKind, 0xDE, 0xAD, 0xBE, 0xEF] as [UInt8])
        buffer.writeInteger(counter, endianness: .big)
        buffer.writeBytes(plaintext)
        return buffer
    }

    private func plaintext(_ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } }

    /// The nonce written out independently of `SessionKey`: 4 zero bytes, the counter little-endian.
    private func nonce(_ counter: UInt64) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: [0, 0, 0, 0] + withUnsafeBytes(of: counter.littleEndian) { Array($0) })
    }

    func testSealedBytesAreSwiftCryptosAESGCM() throws {
        let key = SymmetricKey(size: .bits256)
        let sessionKey = SessionKey(key)
        for size in sizes {
            for counter in counters {
                let bytes = plaintext(size)
                var sealed = frame(bytes, counter: counter)
                let header = Array(sealed.readableBytesView.prefix(14))
                sessionKey.seal(&sealed, headerLength: 14, counter: counter)
                let box = try AES.GCM.seal(bytes, using: key, nonce: nonce(counter), authenticating: header)
                XCTAssertEqual(Array(sealed.readableBytesView), header + Array(box.ciphertext) + Array(box.tag),
                               "size \(size), counter \(counter)")
            }
        }
    }

    func testEachOpensWhatTheOtherSealed() throws {
        let key = SymmetricKey(size: .bits256)
        let sessionKey = SessionKey(key)
        for size in sizes {
            for counter in counters {
                let bytes = plaintext(size)
                // Ours, opened by swift-crypto.
                var sealed = frame(bytes, counter: counter)
                sessionKey.seal(&sealed, headerLength: 14, counter: counter)
                let all = Array(sealed.readableBytesView)
                let box = try AES.GCM.SealedBox(nonce: nonce(counter), ciphertext: all[14..<(all.count - 16)],
                                                tag: all.suffix(16))
                XCTAssertEqual(Array(try AES.GCM.open(box, using: key, authenticating: all.prefix(14))), bytes)
                // swift-crypto's, opened by ours.
                let header = Array(frame([], counter: counter).readableBytesView)
                let theirs = try AES.GCM.seal(bytes, using: key, nonce: nonce(counter), authenticating: header)
                var received = ByteBuffer(bytes: header + Array(theirs.ciphertext) + Array(theirs.tag))
                var opened = ByteBuffer()
                XCTAssertTrue(sessionKey.open(received, headerLength: 14, counter: counter, into: &opened))
                XCTAssertEqual(Array(opened.readableBytesView), bytes, "size \(size), counter \(counter)")
                received.clear()
            }
        }
    }

    func testAnyChangedByteOrWrongCounterOrKeyFailsToOpen() {
        let sessionKey = SessionKey(SymmetricKey(size: .bits256))
        var sealed = frame(plaintext(40), counter: 9)
        sessionKey.seal(&sealed, headerLength: 14, counter: 9)
        var opened = ByteBuffer(bytes: [1, 2, 3])
        for index in 0..<sealed.readableBytes {
            var tampered = sealed
            tampered.setInteger(tampered.getInteger(at: index, as: UInt8.self)! ^ 0x01, at: index)
            XCTAssertFalse(sessionKey.open(tampered, headerLength: 14, counter: 9, into: &opened), "byte \(index)")
            XCTAssertEqual(opened.readableBytes, 0, "nothing of a failed open is left")
        }
        XCTAssertFalse(sessionKey.open(sealed, headerLength: 14, counter: 10, into: &opened), "another nonce")
        XCTAssertFalse(SessionKey(SymmetricKey(size: .bits256)).open(sealed, headerLength: 14, counter: 9, into: &opened))
        XCTAssertFalse(sessionKey.open(ByteBuffer(bytes: [UInt8](repeating: 0, count: 29)), headerLength: 14,
                                       counter: 9, into: &opened), "shorter than header and tag")
        XCTAssertTrue(sessionKey.open(sealed, headerLength: 14, counter: 9, into: &opened))
        XCTAssertEqual(Array(opened.readableBytesView), plaintext(40))
    }

    #if canImport(CCryptoBoringSSL)
    func testSealingAndOpeningWriteIntoTheBuffersGiven() {
        let sessionKey = SessionKey(SymmetricKey(size: .bits256))
        var sealed = frame(plaintext(1_400), counter: 3, headroom: 8, tailroom: 16)
        let storage = sealed.withVeryUnsafeBytes { $0.baseAddress }
        sessionKey.seal(&sealed, headerLength: 14, counter: 3)
        XCTAssertEqual(sealed.withVeryUnsafeBytes { $0.baseAddress }, storage, "sealed in the frame's own storage")
        XCTAssertEqual(sealed.readableBytes, 14 + 1_400 + 16)

        var opened = ByteBufferAllocator().buffer(capacity: 2_048)
        opened.writeBytes([9, 9, 9])
        let target = opened.withVeryUnsafeBytes { $0.baseAddress }
        XCTAssertTrue(sessionKey.open(sealed, headerLength: 14, counter: 3, into: &opened))
        XCTAssertEqual(opened.withVeryUnsafeBytes { $0.baseAddress }, target, "opened into the buffer given")
        XCTAssertEqual(Array(opened.readableBytesView), plaintext(1_400))
    }
    #endif
}
