import NIOCore

/// The frames of a secure session (docs/protocol.md, "Secure frames"), on an edge or end to end inside
/// routed packets. Layout: `version:u8 kind:u8 body`, with kinds 0x20-0x24 so that an edge tells them from
/// plaintext edge messages by the second byte.
///
/// - init (0x20): `sender_index:u32 ephemeral:32 certificate:u16-prefixed first_messages signature:64
///   admission_mac:16 cookie_mac:16`, where `first_messages` is `0:u8`, or `1:u8 stamp:u64 sealed:u16-prefixed`
///   (the initiator's first messages sealed for the responder's static key, `StaticHandshakeKey`, with every
///   byte up to the stamp as associated data); the signature (by the certificate's key) covers `"wow/init/1"` and every byte before it;
///   the admission MAC (`AdmissionKey`, from the network authority's key) every byte before it; the cookie MAC,
///   keyed by a cookie the responder gave (zeros without one), every byte before it.
/// - response (0x21): `sender_index:u32 receiver_index:u32 ephemeral:32 certificate:u16-prefixed
///   took_first_messages:u8 signature:64`; the signature covers `"wow/response/1"`, SHA-256 of the whole init, and every byte
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
    /// Only in inits: the initiator's first messages, sealed for the responder's static key
    /// (`StaticHandshakeKey`), with their stamp and every byte up to the stamp (authenticated with them).
    var firstMessages: FirstMessages?
    /// Only in responses: whether the responder took the init's first messages.
    var tookFirstMessages = false
    var signature: [UInt8]
    /// Every byte the signature covers after its label (and, in a response, the init's digest).
    var signedPart: [UInt8]

    struct FirstMessages {
        var stamp: UInt64
        var sealed: [UInt8]
        var header: [UInt8]
    }

    /// At most this many bytes of sealed first messages (a link request and what rides behind it).
    static let maximumFirstMessages = 4_096

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
        var firstMessages: FirstMessages?
        var took = false
        switch (kind, try reader.u8(kind == SecureFrame.initKind ? "first_messages presence" : "took_first_messages")) {
        case (_, 0): break
        case (SecureFrame.initKind, 1):
            let stamp = try reader.u64("stamp")
            let sealed = try reader.lengthPrefixed("first_messages", limit: maximumFirstMessages)
            let headerLength = frame.readableBytes - reader.buffer.readableBytes - sealed.count - 2
            firstMessages = FirstMessages(stamp: stamp, sealed: sealed,
                                          header: frame.getBytes(at: frame.readerIndex, length: headerLength) ?? [])
        case (SecureFrame.responseKind, 1): took = true
        case (SecureFrame.initKind, let other):
            throw .unknownValue(field: "first_messages presence", value: other)
        case (_, let other):
            throw .unknownValue(field: "took_first_messages", value: other)
        }
        let signedLength = frame.readableBytes - reader.buffer.readableBytes
        let signature = try reader.bytes("signature", count: SecureFrame.signatureSize)
        try reader.expectEnd()
        let signed = frame.getBytes(at: frame.readerIndex, length: signedLength) ?? []
        return HandshakeMessage(senderIndex: sender, receiverIndex: receiver, ephemeral: ephemeral,
                                certificate: certificate, firstMessages: firstMessages, tookFirstMessages: took,
                                signature: signature, signedPart: signed)
    }

    /// Builds the frame, signing it with `sign` over `label + prefix + body`; an init then gets its admission
    /// MAC under `admission` and an empty cookie MAC. `seal`, in an init, seals first messages given every byte
    /// before them (nil: none); `took`, in a response, says the init's were taken.
    static func make(kind: UInt8, senderIndex: UInt32, receiverIndex: UInt32?, ephemeral: [UInt8],
                     certificate: [UInt8], label: [UInt8], prefix: [UInt8], admission: AdmissionKey? = nil,
                     firstMessages seal: ((_ header: [UInt8]) -> [UInt8]?)? = nil, stamp: UInt64 = 0,
                     took: Bool = false, sign: ([UInt8]) -> [UInt8]) -> ByteBuffer {
        var buffer = SecureFrame.header(kind, capacity: 2 + 8 + 32 + 2 + certificate.count + 1 + 64 + AdmissionKey.trailerSize)
        buffer.writeInteger(senderIndex, endianness: .big)
        if let receiverIndex { buffer.writeInteger(receiverIndex, endianness: .big) }
        buffer.writeBytes(ephemeral)
        buffer.writeInteger(UInt16(certificate.count), endianness: .big)
        buffer.writeBytes(certificate)
        if kind == SecureFrame.initKind {
            let start = buffer.writerIndex
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(stamp, endianness: .big)
            // Sealed with every byte before the length as associated data (the signature covers all of it).
            if let seal, let sealed = seal(Array(buffer.readableBytesView)),
               sealed.count <= maximumFirstMessages {
                buffer.writeInteger(UInt16(sealed.count), endianness: .big)
                buffer.writeBytes(sealed)
            } else {
                buffer.moveWriterIndex(to: start)
                buffer.writeInteger(UInt8(0))
            }
        } else {
            buffer.writeInteger(UInt8(took ? 1 : 0))
        }
        buffer.writeBytes(sign(label + prefix + Array(buffer.readableBytesView)))
        if let admission {
            let mac = buffer.withUnsafeReadableBytes { admission.mac($0) }
            buffer.writeBytes(mac)
            buffer.writeRepeatingByte(0, count: AdmissionKey.macSize)  // no cookie yet
        }
        return buffer
    }
}
