import NIOCore
import XCTest

@testable import WOWKit

/// A test network: one certificate authority from a fixed seed, issuing members' credentials.
struct TestNetwork {
    /// The wall clock the tests' certificates are checked against.
    static let unixTime: Int64 = 1_750_000_000
    static let unixMicroseconds = UInt64(unixTime) * 1_000_000
    static let year: Int64 = 365 * 86_400

    let authorityKey: NetworkAuthorityKey
    var authority: NetworkAuthority { authorityKey.authority }
    var id: NetworkID { authority.network }

    /// A network whose id is 16 bytes of `id` and whose key comes from `keySeed` (the same id with another
    /// key seed is an impostor authority for the same network).
    init(id: UInt8 = 1, keySeed: UInt8? = nil) {
        authorityKey = .deterministic(name: "net-\(id)", seed: [keySeed ?? id, 0xCA],
                                      network: NetworkID(bytes: [UInt8](repeating: id, count: NetworkID.byteCount))!,
                                      now: TestNetwork.unixTime - TestNetwork.year)
    }

    /// A member's identity, from its name.
    static func identity(_ name: String) -> NodeIdentity { .deterministic(seed: Array("node/\(name)".utf8)) }

    /// A certificate for `name`'s key (or `identity`'s), valid for a year around `unixTime` unless told.
    func certificate(_ name: String, identity: NodeIdentity? = nil, virtualIPs: [VirtualIP] = [],
                     notBefore: Int64 = unixTime - year, notAfter: Int64 = unixTime + year,
                     serial: UInt64 = 1) throws -> MembershipCertificate {
        try authorityKey.issue(name: name, publicKey: (identity ?? TestNetwork.identity(name)).publicKey,
                               virtualIPs: virtualIPs, notBefore: notBefore, notAfter: notAfter, serial: serial)
    }

    /// Consistent credentials for `name` in this network.
    func member(_ name: String, virtualIPs: [VirtualIP] = [], notBefore: Int64 = unixTime - year,
                notAfter: Int64 = unixTime + year) throws -> NodeCredentials {
        try authorityKey.member(name: name, identity: TestNetwork.identity(name), virtualIPs: virtualIPs,
                                notBefore: notBefore, notAfter: notAfter, serial: 1)
    }
}

/// One end of a secure channel under test: the channel, its node's credentials, a virtual clock and a seed.
final class ChannelEnd {
    var channel: SecureChannel
    var credentials: NodeCredentials
    var settings: SecureChannel.Settings
    var now = Timestamp.zero
    var unixTime = TestNetwork.unixTime
    var random: SeededRandom
    /// The end's static key (none: its inits carry no first messages and it takes none).
    var staticKey: StaticHandshakeKey?

    init(_ credentials: NodeCredentials, seed: UInt64, expectedPeer: Address? = nil,
         settings: SecureChannel.Settings = ChannelEnd.defaultSettings) {
        channel = SecureChannel(expectedPeer: expectedPeer)
        self.credentials = credentials
        self.settings = settings
        random = SeededRandom(seed: seed)
    }

    static var defaultSettings: SecureChannel.Settings {
        var settings = SecureChannel.Settings()
        settings.deterministicKeys = true
        return settings
    }

    var environment: SecureChannel.Environment {
        SecureChannel.Environment(credentials: credentials, settings: settings, now: now, unixTime: unixTime,
                                  staticKey: staticKey)
    }

    func send(_ plaintext: [UInt8]) -> [SecureChannel.Output] {
        Array(channel.send(ByteBuffer(bytes: plaintext), environment, random: &random))
    }

    func receive(_ frame: ByteBuffer) -> [SecureChannel.Output] {
        Array(channel.receive(frame, environment, random: &random))
    }

    func handshake() -> [SecureChannel.Output] { Array(channel.handshake(environment, random: &random)) }

    /// The one frame `send` returns; fails the test otherwise.
    func seal(_ plaintext: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ByteBuffer {
        let outputs = send(plaintext)
        XCTAssertEqual(outputs.frames.count, 1, "\(outputs)", file: file, line: line)
        return outputs.frames.first ?? ByteBuffer()
    }
}

/// Two channel ends on one virtual clock, passing frames to each other.
final class ChannelPair {
    let a: ChannelEnd
    let b: ChannelEnd
    /// Everything each side output, in order, since the pair was made.
    var aOutputs: [SecureChannel.Output] = []
    var bOutputs: [SecureChannel.Output] = []

    init(_ a: ChannelEnd, _ b: ChannelEnd) {
        self.a = a
        self.b = b
    }

    /// Two members of one network, `alice` (a) and `bob` (b).
    convenience init(settings: SecureChannel.Settings = ChannelEnd.defaultSettings, seed: UInt64 = 1) throws {
        let network = TestNetwork()
        self.init(ChannelEnd(try network.member("alice", virtualIPs: [VirtualIP(0x6440_0001)]), seed: seed,
                             settings: settings),
                  ChannelEnd(try network.member("bob", virtualIPs: [VirtualIP(0x6440_0002)]), seed: seed &+ 1000,
                             settings: settings))
    }

    var now: Timestamp { a.now }

    func advance(by duration: Duration) {
        a.now = a.now + duration
        b.now = b.now + duration
    }

    /// Delivers `toB` to b and `toA` to a, then every frame either answers with, until neither transmits.
    @discardableResult
    func settle(toB: [ByteBuffer] = [], toA: [ByteBuffer] = [], file: StaticString = #filePath,
                line: UInt = #line) -> (a: [SecureChannel.Output], b: [SecureChannel.Output]) {
        var pendingB = toB, pendingA = toA
        var outA: [SecureChannel.Output] = [], outB: [SecureChannel.Output] = []
        var rounds = 0
        while !pendingA.isEmpty || !pendingB.isEmpty {
            rounds += 1
            guard rounds <= 50 else {
                XCTFail("the channels kept transmitting to each other", file: file, line: line)
                break
            }
            let forB = pendingB, forA = pendingA
            pendingB = []
            pendingA = []
            for frame in forB {
                let outputs = b.receive(frame)
                outB += outputs
                pendingA += outputs.frames
            }
            for frame in forA {
                let outputs = a.receive(frame)
                outA += outputs
                pendingB += outputs.frames
            }
        }
        aOutputs += outA
        bOutputs += outB
        return (outA, outB)
    }

    /// a sends `plaintext`, and frames pass until quiet; returns what each side output on the way.
    @discardableResult
    func aSends(_ plaintext: [UInt8], file: StaticString = #filePath, line: UInt = #line)
        -> (a: [SecureChannel.Output], b: [SecureChannel.Output]) {
        let outputs = a.send(plaintext)
        aOutputs += outputs
        let settled = settle(toB: outputs.frames, file: file, line: line)
        return (outputs + settled.a, settled.b)
    }

    @discardableResult
    func bSends(_ plaintext: [UInt8], file: StaticString = #filePath, line: UInt = #line)
        -> (a: [SecureChannel.Output], b: [SecureChannel.Output]) {
        let outputs = b.send(plaintext)
        bOutputs += outputs
        let settled = settle(toA: outputs.frames, file: file, line: line)
        return (settled.a, outputs + settled.b)
    }

    /// Handshakes by a sending a first message; fails unless both sides are established.
    func connect(file: StaticString = #filePath, line: UInt = #line) {
        let hello = Array("hello".utf8)
        let (outA, outB) = aSends(hello, file: file, line: line)
        XCTAssertEqual(outA.established.map(\.name), ["bob"], "\(outA)", file: file, line: line)
        XCTAssertEqual(outB.established.map(\.name), ["alice"], "\(outB)", file: file, line: line)
        XCTAssertEqual(outB.delivered, [hello], file: file, line: line)
        XCTAssertTrue(a.channel.isEstablished && b.channel.isEstablished, file: file, line: line)
    }
}

extension SecureChannel.Output {
    var frame: ByteBuffer? { if case .transmit(let frame) = self { return frame } else { return nil } }
    var plaintext: [UInt8]? {
        if case .deliver(let buffer) = self { return Array(buffer.readableBytesView) } else { return nil }
    }
    var certificate: MembershipCertificate? {
        if case .established(let certificate) = self { return certificate } else { return nil }
    }
    var refusal: SecurityRefusal? { if case .refused(let refusal) = self { return refusal } else { return nil } }
    var dropReason: String? { if case .dropped(let reason) = self { return reason } else { return nil } }
}

extension Array where Element == SecureChannel.Output {
    var frames: [ByteBuffer] { compactMap(\.frame) }
    var delivered: [[UInt8]] { compactMap(\.plaintext) }
    var established: [MembershipCertificate] { compactMap(\.certificate) }
    var refusals: [SecurityRefusal] { compactMap(\.refusal) }
    var drops: [String] { compactMap(\.dropReason) }
    /// The kind byte of each transmitted frame.
    var frameKinds: [UInt8] { frames.compactMap { $0.getInteger(at: $0.readerIndex + 1, as: UInt8.self) } }
}

extension SeededRandom {
    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

extension ByteBuffer {
    /// A copy with byte `index` (from the reader index) XORed with `mask`.
    func changing(byteAt index: Int, xor mask: UInt8) -> ByteBuffer {
        var bytes = Array(readableBytesView)
        bytes[index] ^= mask
        return ByteBuffer(bytes: bytes)
    }

    /// The first `length` readable bytes, as a new buffer.
    func prefix(_ length: Int) -> ByteBuffer { ByteBuffer(bytes: Array(readableBytesView.prefix(length))) }
}
