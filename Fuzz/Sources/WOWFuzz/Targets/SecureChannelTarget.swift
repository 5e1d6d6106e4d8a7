import NIOCore
@testable import WOWKit

/// A responder's `SecureChannel` (bob's) under attack, driven by a script in the input: genuine peers
/// (alice and carol, members; mallory, whose certificate comes from an impostor authority) handshake and send
/// through it with their own real channels, while the script drops, replays, reorders, truncates, tampers
/// with and forges frames, moves the clock (by milliseconds, or by days so that certificates expire), restarts
/// peers, and feeds raw bytes. Unless the mode says otherwise, the peers know bob's static key, so their inits
/// carry their first messages (`StaticHandshakeKey`), and bob takes them only from a fresh init.
///
/// Checks, on every output: bob delivers only plaintext a member really sent, each at most once (no forgery,
/// no replay); he establishes sessions only with members whose certificates are valid at the time (only
/// alice when the channel is end to end to alice's address); every frame he transmits is a secure frame. The
/// same holds for what the peers deliver from bob.
enum SecureChannelTarget: FuzzTarget {
    static let name = "secure-channel"
    static let summary = "responder SecureChannel fed genuine, replayed, tampered and raw frames; authenticity and replay checked"

    /// Script operations (the input's bytes, each followed by its operands).
    enum Op: UInt8, CaseIterable {
        case raw, peerSends, deliverToBob, dropToBob, deliverToPeer, replay, tamper, tick, bobSends,
             bobHandshakes, peerHandshakes, restartPeer, resize, reflect, longTick
    }

    final class Party {
        let id: UInt8
        let credentials: NodeCredentials
        var channel: SecureChannel
        var random: SeededRandom
        var restarts: UInt64 = 0
        /// Its static key (a restart draws a new one, as a new process does).
        var staticKey: StaticHandshakeKey
        /// Bob's static key, if the party knows it (its inits then carry first messages).
        let peerStaticKey: [UInt8]?

        init(id: UInt8, credentials: NodeCredentials, expectedPeer: Address? = nil, peerStaticKey: [UInt8]? = nil) {
            self.id = id
            self.credentials = credentials
            self.peerStaticKey = peerStaticKey
            channel = SecureChannel(expectedPeer: expectedPeer)
            channel.peerStaticKey = peerStaticKey
            random = SeededRandom(seed: 0x5EC0_0000 + UInt64(id))
            staticKey = Party.staticKey(id: id, restarts: 0)
        }

        static func staticKey(id: UInt8, restarts: UInt64) -> StaticHandshakeKey {
            StaticHandshakeKey(privateKey: drawnKey(id: id, restarts: restarts).privateKey,
                               clock: { UInt64(FuzzFixtures.unixTime) * 1_000_000 })
        }

        /// The keys drawn so far, kept across inputs for their private halves: deriving a public key is an
        /// X25519 multiplication and every input needs four. (A `StaticHandshakeKey` holds replay state, so each
        /// input gets new ones around the same private keys.)
        nonisolated(unsafe) static var drawnKeys: [UInt64: StaticHandshakeKey] = [:]

        static func drawnKey(id: UInt8, restarts: UInt64) -> StaticHandshakeKey {
            let index = UInt64(id) << 56 | restarts
            if let known = drawnKeys[index] { return known }
            let bytes = (0..<32).map { UInt8(truncatingIfNeeded: Int(id) &* 31 &+ $0 &+ Int(restarts) &* 7) }
            let made = try! StaticHandshakeKey(privateKeyBytes: bytes, clock: { UInt64(FuzzFixtures.unixTime) * 1_000_000 })
            // A script restarts a peer at most 64 times: the cache stays small.
            if drawnKeys.count < 1024 { drawnKeys[index] = made }
            return made
        }

        func restart() {
            restarts += 1
            channel = SecureChannel(expectedPeer: channel.expectedPeer)
            channel.peerStaticKey = peerStaticKey
            random = SeededRandom(seed: 0x5EC0_0000 + UInt64(id) + restarts << 8)
            staticKey = Party.staticKey(id: id, restarts: restarts)
        }
    }

    /// Bob's id in plaintext tags.
    static let bobID: UInt8 = 0xB0

    struct Run {
        var input: FuzzInput
        let endToEnd: Bool
        var settings: SecureChannel.Settings
        let bob: Party
        let peers: [Party]
        var now = Timestamp(nanoseconds: 1_000_000_000)
        /// The wall clock moves with `now`, as on a node.
        var unixTime: Int64 { FuzzFixtures.unixTime + now.nanoseconds / 1_000_000_000 }
        /// Frames on their way to bob (with their sender), and from bob to whichever peer takes them.
        var toBob: [ByteBuffer] = []
        var fromBob: [ByteBuffer] = []
        /// Frames peers sent, and frames bob sent, for replays.
        var peerFrames: [ByteBuffer] = []
        var bobFrames: [ByteBuffer] = []
        var counter: UInt32 = 0
        var sent: Set<[UInt8]> = []
        var delivered: Set<[UInt8]> = []

        var environment: SecureChannel.Environment { env(bob) }

        func env(_ party: Party) -> SecureChannel.Environment {
            SecureChannel.Environment(credentials: party.credentials, settings: settings, now: now, unixTime: unixTime,
                                      staticKey: party.staticKey)
        }

        mutating func plaintext(from id: UInt8) -> ByteBuffer {
            counter += 1
            let bytes = [id, UInt8(counter >> 24), UInt8(counter >> 16 & 0xFF), UInt8(counter >> 8 & 0xFF),
                         UInt8(counter & 0xFF)] + [UInt8](repeating: 0xEE, count: Int(input.byte() % 48))
            sent.insert(bytes)
            // Room around it, as the node leaves it (the channel then seals in place).
            var buffer = ByteBufferAllocator().buffer(capacity: bytes.count + 30)
            buffer.moveWriterIndex(to: SecureChannel.sealingHeadroom)
            buffer.moveReaderIndex(to: SecureChannel.sealingHeadroom)
            buffer.writeBytes(bytes)
            return buffer
        }

        static func record(_ frames: inout [ByteBuffer], _ frame: ByteBuffer) {
            if frames.count >= 32 { frames.removeFirst() }
            frames.append(frame)
        }

        /// Bob takes one frame.
        mutating func bobReceives(_ frame: ByteBuffer) {
            var random = bob.random
            let outputs = bob.channel.receive(frame, environment, random: &random)
            bob.random = random
            checkBob(outputs)
        }

        mutating func checkBob(_ outputs: SecureChannel.Outputs) {
            for output in outputs {
                switch output {
                case .transmit(let frame):
                    require(SecureFrame.isSecureFrame(frame), "bob transmits a non-secure frame \(Array(frame.readableBytesView))")
                    fromBob.append(frame)
                    Run.record(&bobFrames, frame)
                case .deliver(let plaintext):
                    let bytes = Array(plaintext.readableBytesView)
                    require(sent.contains(bytes), "bob delivers plaintext nobody sent: \(bytes)")
                    let sender = bytes.first ?? 0
                    require(sender == FuzzFixtures.alice.certificate.name.utf8.first! || (!endToEnd && sender == UInt8(ascii: "c")),
                            "bob delivers plaintext from \(sender) (end to end: \(endToEnd))")
                    require(!delivered.contains(bytes), "bob delivers \(bytes) twice")
                    delivered.insert(bytes)
                case .established(let certificate):
                    let allowed = endToEnd ? [FuzzFixtures.alice.certificate]
                        : [FuzzFixtures.alice.certificate, FuzzFixtures.carol.certificate]
                    require(allowed.contains(certificate), "bob established a session with \(certificate.name)")
                    // Checked at the init; the session is confirmed by a frame within `rejectAfter` of it.
                    let initTime = unixTime - settings.rejectAfter.components.seconds
                    require(bob.credentials.check(certificate, at: unixTime) == nil
                                || bob.credentials.check(certificate, at: initTime) == nil,
                            "bob established a session with \(certificate.name), refused at \(unixTime)")
                case .refused, .dropped, .reachedSelf:
                    break
                }
            }
        }

        mutating func peerReceives(_ peer: Party, _ frame: ByteBuffer) {
            var random = peer.random
            let outputs = peer.channel.receive(frame, env(peer), random: &random)
            peer.random = random
            checkPeer(peer, outputs)
        }

        mutating func checkPeer(_ peer: Party, _ outputs: SecureChannel.Outputs) {
            for output in outputs {
                switch output {
                case .transmit(let frame):
                    toBob.append(frame)
                    Run.record(&peerFrames, frame)
                case .deliver(let plaintext):
                    let bytes = Array(plaintext.readableBytesView)
                    require(bytes.first == SecureChannelTarget.bobID && sent.contains(bytes),
                            "\(peer.credentials.certificate.name) delivers plaintext bob never sent: \(bytes)")
                    require(!delivered.contains(bytes), "\(peer.credentials.certificate.name) delivers \(bytes) twice")
                    delivered.insert(bytes)
                case .established(let certificate):
                    require(certificate == FuzzFixtures.bob.certificate,
                            "\(peer.credentials.certificate.name) established with \(certificate.name)")
                case .refused, .dropped, .reachedSelf:
                    break
                }
            }
        }

        func pick(_ frames: [ByteBuffer], _ index: UInt8) -> ByteBuffer? {
            frames.isEmpty ? nil : frames[Int(index) % frames.count]
        }

        mutating func step() {
            guard let op = Op(rawValue: input.byte() % UInt8(Op.allCases.count)) else { return }
            switch op {
            case .raw:
                let length = Int(input.u16() % 512)
                bobReceives(ByteBuffer(bytes: input.bytes(length)))
            case .peerSends:
                let peer = peers[Int(input.byte()) % peers.count]
                let message = plaintext(from: peer.credentials.certificate.name.utf8.first!)
                var random = peer.random
                let outputs = peer.channel.send(message, env(peer), random: &random)
                peer.random = random
                checkPeer(peer, outputs)
            case .deliverToBob:
                if !toBob.isEmpty { bobReceives(toBob.removeFirst()) }
            case .dropToBob:
                if !toBob.isEmpty { toBob.removeFirst() }
            case .deliverToPeer:
                let peer = peers[Int(input.byte()) % peers.count]
                let frames = fromBob
                fromBob = []
                for frame in frames { peerReceives(peer, frame) }
            case .replay:
                if let frame = pick(peerFrames, input.byte()) { bobReceives(frame) }
            case .tamper:
                guard var bytes = pick(peerFrames, input.byte()).map({ Array($0.readableBytesView) }),
                      !bytes.isEmpty else { return }
                for _ in 0...(input.byte() % 4) {
                    let position = Int(input.u16()) % bytes.count
                    bytes[position] ^= input.byte() | 1
                }
                bobReceives(ByteBuffer(bytes: bytes))
            case .tick:
                now = now + .milliseconds(Int64(input.byte()) * 50)
            case .bobSends:
                let message = plaintext(from: SecureChannelTarget.bobID)
                var random = bob.random
                let outputs = bob.channel.send(message, environment, random: &random)
                bob.random = random
                checkBob(outputs)
            case .bobHandshakes:
                var random = bob.random
                let outputs = bob.channel.handshake(environment, random: &random)
                bob.random = random
                checkBob(outputs)
            case .peerHandshakes:
                let peer = peers[Int(input.byte()) % peers.count]
                var random = peer.random
                let outputs = peer.channel.handshake(env(peer), random: &random)
                peer.random = random
                checkPeer(peer, outputs)
            case .restartPeer:
                peers[Int(input.byte()) % peers.count].restart()
            case .resize:
                guard let frame = pick(peerFrames, input.byte()) else { return }
                var bytes = Array(frame.readableBytesView)
                let length = Int(input.u16() % 512)
                if length < bytes.count { bytes.removeLast(bytes.count - length) } else { bytes += input.bytes(length - bytes.count) }
                bobReceives(ByteBuffer(bytes: bytes))
            case .reflect:
                if let frame = pick(bobFrames, input.byte()) { bobReceives(frame) }
            case .longTick:
                now = now + .seconds(Int64(input.byte()) * FuzzFixtures.day)
            }
        }
    }

    static func run(_ data: [UInt8]) {
        var input = FuzzInput(data)
        let mode = input.byte()
        let endToEnd = mode & 1 != 0
        var settings = SecureChannel.Settings()
        settings.deterministicKeys = true
        if mode & 2 != 0 { settings.maximumQueued = 2 }
        if mode & 4 != 0 {
            // Counters run out within a few frames: rekeys and refusals to seal by count.
            settings.rekeyAfterMessages = 3
            settings.rejectAfterMessages = 6
        }
        let bob = Party(id: SecureChannelTarget.bobID, credentials: FuzzFixtures.bob,
                        expectedPeer: endToEnd ? FuzzFixtures.alice.address : nil)
        // Bob's key as the peers know it: from his NodeInfo, unless mode bit 8 says they have none.
        let bobsKey = mode & 8 != 0 ? nil : bob.staticKey.publicKey
        let peers = [Party(id: 1, credentials: FuzzFixtures.alice, expectedPeer: endToEnd ? FuzzFixtures.bob.address : nil,
                           peerStaticKey: bobsKey),
                     Party(id: 2, credentials: FuzzFixtures.carol, peerStaticKey: bobsKey),
                     Party(id: 3, credentials: FuzzFixtures.mallory, peerStaticKey: bobsKey)]
        var run = Run(input: input, endToEnd: endToEnd, settings: settings, bob: bob, peers: peers)
        var steps = 0
        while !run.input.isEmpty && steps < 64 {
            run.step()
            steps += 1
        }
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func script(_ mode: UInt8, _ ops: [(Op, [UInt8])]) -> [UInt8] {
            var writer = FuzzInputWriter()
            writer.byte(mode)
            for (op, operands) in ops {
                writer.byte(op.rawValue)
                writer.append(operands)
            }
            return writer.bytes
        }
        // Alice sends (init), bob answers, alice confirms with the queued plaintext, both send more.
        let handshake: [(Op, [UInt8])] = [(.peerSends, [0, 4]), (.deliverToBob, []), (.deliverToPeer, [0]),
                                          (.deliverToBob, []), (.bobSends, [3]), (.deliverToPeer, [0]),
                                          (.peerSends, [0, 0]), (.deliverToBob, [])]
        var genuineInit: [UInt8] = []
        do {
            var random = SeededRandom(seed: 1)
            var settings = SecureChannel.Settings()
            settings.deterministicKeys = true
            var channel = SecureChannel()
            let env = SecureChannel.Environment(credentials: FuzzFixtures.alice, settings: settings,
                                                now: Timestamp(nanoseconds: 0), unixTime: FuzzFixtures.unixTime)
            if case .transmit(let frame)? = channel.handshake(env, random: &random).first {
                genuineInit = Array(frame.readableBytesView)
            }
        }
        let rawInit = [UInt8(genuineInit.count >> 8), UInt8(genuineInit.count & 0xFF)] + genuineInit
        return [
            ("handshake", script(0, handshake)),
            ("handshake-end-to-end", script(1, handshake)),
            ("handshake-small-counters", script(6, handshake + [(.peerSends, [0, 1]), (.deliverToBob, []),
                                                                (.peerSends, [0, 1]), (.deliverToBob, []),
                                                                (.deliverToPeer, [0]), (.deliverToBob, [])])),
            ("replay-and-tamper", script(0, handshake + [(.replay, [3]), (.tamper, [3, 0, 0, 20, 0x40]),
                                                         (.resize, [2, 0, 30]), (.reflect, [0])])),
            ("impostor", script(1, [(.peerSends, [2, 1]), (.deliverToBob, []), (.deliverToPeer, [2]),
                                    (.peerSends, [1, 1]), (.deliverToBob, []), (.deliverToPeer, [1]),
                                    (.deliverToBob, [])])),
            ("rekey-and-restart", script(0, handshake + [(.longTick, [13]), (.bobSends, [0]), (.deliverToPeer, [0]),
                                                         (.restartPeer, [0]), (.deliverToBob, []),
                                                         (.peerHandshakes, [0]), (.deliverToBob, []),
                                                         (.bobHandshakes, []), (.deliverToPeer, [0]),
                                                         (.tick, [30]), (.dropToBob, [])])),
            ("raw-init", script(0, [(.raw, rawInit), (.deliverToPeer, [0])])),
            ("raw-garbage", script(0, [(.raw, [0, 6, 1, 0x24, 0, 0, 0, 1]), (.raw, [0, 3, 1, 0x23, 4])])),
        ]
    }
}
