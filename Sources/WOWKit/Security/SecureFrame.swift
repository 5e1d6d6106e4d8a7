import NIOCore

/// The frames of a secure session (docs/protocol.md, "Secure frames"), on an edge or end to end inside
/// routed packets. Layout: `version:u8 kind:u8 body`, with kinds 0x20-0x24 so that an edge tells them from
/// plaintext edge messages by the second byte.
///
/// - init (0x20): `sender_index:u32 ephemeral:32 certificate:u16-prefixed signature:64 admission_mac:16
///   cookie_mac:16`; the signature (by the certificate's key) covers `"wow/init/1"` and every byte before it;
///   the admission MAC (`AdmissionKey`, from the network authority's key) every byte before it; the cookie MAC,
///   keyed by a cookie the responder gave (zeros without one), every byte before it.
/// - response (0x21): `sender_index:u32 receiver_index:u32 ephemeral:32 certificate:u16-prefixed
///   signature:64`; the signature covers `"wow/response/1"`, SHA-256 of the whole init, and every byte
///   before it.
/// - sealed (0x22): `receiver_index:u32 counter:u64 ciphertext tag:16`; AES-256-GCM with the 14 header
///   bytes as associated data and the counter as nonce.
/// - refused (0x23): `code:u8 message:text`, unauthenticated: why the sender refused our handshake.
/// - unknown session (0x24): `receiver_index:u32`, unauthenticated: the sender has no session with that
///   index (it restarted), so ours should handshake again.
/// - cookie (0x25): `sender_index:u32 cookie:16`, unauthenticated: a busy responder's answer to our init with
///   that index; the init is sent again with its cookie MAC under `cookie`.
public enum SecureFrame {
    public static let initKind: UInt8 = 0x20
    public static let responseKind: UInt8 = 0x21
    public static let sealedKind: UInt8 = 0x22
    public static let refusedKind: UInt8 = 0x23
    public static let unknownSessionKind: UInt8 = 0x24
    public static let cookieKind: UInt8 = 0x25
    static let cookieSize = 16

    /// Bytes a sealed frame adds to its plaintext: the header and the tag.
    public static let sealedOverhead = sealedHeaderSize + tagSize
    static let sealedHeaderSize = 14
    static let tagSize = 16
    static let signatureSize = 64
    static let keySize = 32

    /// Whether `packet` is a secure frame (by its kind byte); reads without consuming.
    public static func isSecureFrame(_ packet: ByteBuffer) -> Bool {
        guard let kind = packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) else { return false }
        return (initKind...cookieKind).contains(kind)
    }

    static func header(_ kind: UInt8, capacity: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
        buffer.writeInteger(WireFormat.version)
        buffer.writeInteger(kind)
        return buffer
    }

    /// Why the sender of `frame`, an init whose admission MAC is wrong, is refused: read off its certificate
    /// without checking any signature (cheap, so that it can be answered at all): another network, else
    /// another authority (or a packet changed on the way); a malformed one when it does not parse.
    public static func admissionRefusal(of frame: ByteBuffer, _ credentials: NodeCredentials) -> SecurityRefusal {
        let certificate: MembershipCertificate
        do {
            let message = try HandshakeMessage.decode(frame, kind: initKind)
            certificate = try MembershipCertificate.decode(message.certificate)
        } catch {
            return .malformedCertificate(error.description)
        }
        guard certificate.network == credentials.authority.network else {
            return .wrongNetwork(name: certificate.name, expected: credentials.authority.network, got: certificate.network)
        }
        return .badCertificateSignature(name: certificate.name)
    }

    /// Reads version and kind, checks them; the reader is left at the body.
    static func reader(_ frame: ByteBuffer, kind: UInt8) throws(WireError) -> WireReader {
        var reader = WireReader(frame)
        let version = try reader.u8("version")
        guard version == WireFormat.version else { throw .badVersion(version) }
        let found = try reader.u8("kind")
        guard found == kind else { throw .unknownKind(found) }
        return reader
    }

    static func refused(_ refusal: SecurityRefusal) -> ByteBuffer {
        var buffer = header(refusedKind, capacity: 64)
        buffer.writeInteger(refusal.code)
        buffer.writeShortText(refusal.description, limit: WireFormat.maximumMessageLength)
        return buffer
    }

    /// The peer's words in a `refused` frame.
    public static func refusal(in frame: ByteBuffer) throws(WireError) -> SecurityRefusal {
        var reader = try reader(frame, kind: refusedKind)
        let code = try reader.u8("code")
        let message = try reader.text("message", limit: WireFormat.maximumMessageLength)
        try reader.expectEnd()
        return .refusedByPeer(code: code, message: message)
    }

    static func cookie(_ cookie: [UInt8], forInit index: UInt32) -> ByteBuffer {
        var buffer = header(cookieKind, capacity: 6 + cookieSize)
        buffer.writeInteger(index, endianness: .big)
        buffer.writeBytes(cookie)
        return buffer
    }

    /// The init index and cookie of a cookie frame.
    static func cookie(in frame: ByteBuffer) throws(WireError) -> (index: UInt32, cookie: [UInt8]) {
        var reader = try reader(frame, kind: cookieKind)
        let index = try reader.u32("sender_index")
        let cookie = try reader.bytes("cookie", count: cookieSize)
        try reader.expectEnd()
        return (index, cookie)
    }

    static func unknownSession(_ index: UInt32) -> ByteBuffer {
        var buffer = header(unknownSessionKind, capacity: 6)
        buffer.writeInteger(index, endianness: .big)
        return buffer
    }
}

/// A handshake init or response, parsed.
struct HandshakeMessage {
    var senderIndex: UInt32
    /// Only in responses: the index of the init it answers.
    var receiverIndex: UInt32?
    var ephemeral: [UInt8]
    var certificate: [UInt8]
    var signature: [UInt8]
    /// Every byte the signature covers after its label (and, in a response, the init's digest).
    var signedPart: [UInt8]

    /// Parses an init or a response; an init's admission and cookie MACs (its last 32 bytes) are left out, not
    /// checked.
    static func decode(_ frame: ByteBuffer, kind: UInt8) throws(WireError) -> HandshakeMessage {
        var frame = frame
        if kind == SecureFrame.initKind {
            guard frame.readableBytes > AdmissionKey.trailerSize else { throw .truncated(field: "admission_mac") }
            frame.moveWriterIndex(to: frame.writerIndex - AdmissionKey.trailerSize)
        }
        var reader = try SecureFrame.reader(frame, kind: kind)
        let sender = try reader.u32("sender_index")
        let receiver = kind == SecureFrame.responseKind ? try reader.u32("receiver_index") : nil
        let ephemeral = try reader.bytes("ephemeral", count: SecureFrame.keySize)
        let certificate = try reader.lengthPrefixed("certificate", limit: MembershipCertificate.maximumEncodedSize)
        let signedLength = frame.readableBytes - reader.buffer.readableBytes
        let signature = try reader.bytes("signature", count: SecureFrame.signatureSize)
        try reader.expectEnd()
        let signed = frame.getBytes(at: frame.readerIndex, length: signedLength) ?? []
        return HandshakeMessage(senderIndex: sender, receiverIndex: receiver, ephemeral: ephemeral,
                                certificate: certificate, signature: signature, signedPart: signed)
    }

    /// Builds the frame, signing it with `sign` over `label + prefix + body`; an init then gets its admission
    /// MAC under `admission` and an empty cookie MAC.
    static func make(kind: UInt8, senderIndex: UInt32, receiverIndex: UInt32?, ephemeral: [UInt8],
                     certificate: [UInt8], label: [UInt8], prefix: [UInt8], admission: AdmissionKey? = nil,
                     sign: ([UInt8]) -> [UInt8]) -> ByteBuffer {
        var buffer = SecureFrame.header(kind, capacity: 2 + 8 + 32 + 2 + certificate.count + 64 + AdmissionKey.trailerSize)
        buffer.writeInteger(senderIndex, endianness: .big)
        if let receiverIndex { buffer.writeInteger(receiverIndex, endianness: .big) }
        buffer.writeBytes(ephemeral)
        buffer.writeInteger(UInt16(certificate.count), endianness: .big)
        buffer.writeBytes(certificate)
        buffer.writeBytes(sign(label + prefix + Array(buffer.readableBytesView)))
        if let admission {
            let mac = buffer.withUnsafeReadableBytes { admission.mac($0) }
            buffer.writeBytes(mac)
            buffer.writeRepeatingByte(0, count: AdmissionKey.macSize)  // no cookie yet
        }
        return buffer
    }
}
