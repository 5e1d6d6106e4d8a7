import WOWKit

/// The files a node reads its credentials from: the armored key and certificate files (`CredentialFile`,
/// then each kind's decoder: CA key, CA certificate, node key, membership certificate) and the revocation
/// list. The input's first byte picks the kind; the rest is the file's text.
///
/// Checks: what dearmors armors and dearmors again to the same bytes; each decoded credential re-encodes to
/// exactly its bytes; a CA key decodes only when its private key matches its public key; a revocation list
/// that parses, written out again, parses to the same fingerprints, and a refused one names a line of the
/// file.
enum CredentialFileTarget: FuzzTarget {
    static let name = "credential-file"
    static let summary = "armored CA key / CA / node key / certificate files and revocation lists; round trips"

    static let kinds = CredentialFile.Kind.allCases

    static func run(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let text = String(decoding: data.dropFirst(), as: UTF8.self)
        let choice = Int(selector) % (kinds.count + 1)
        guard choice < kinds.count else { return revocationList(text) }
        let kind = kinds[choice]
        guard let bytes = try? CredentialFile.dearmor(text, as: kind, path: "fuzz") else { return }
        require((try? CredentialFile.dearmor(CredentialFile.armor(bytes, as: kind), as: kind, path: "fuzz")) == bytes,
                "armor round trip of \(bytes.count) bytes")
        switch kind {
        case .authorityKey:
            if let key = try? NetworkAuthorityKey.decode(bytes) {
                require(key.encoded == bytes, "CA key re-encoding differs")
            }
        case .authority:
            if let authority = try? NetworkAuthority.decode(bytes) {
                require(authority.encoded == bytes, "CA re-encoding differs")
            }
        case .nodeKey:
            if let identity = try? NodeIdentity.decode(bytes) {
                require(identity.encoded == bytes, "node key re-encoding differs")
            }
        case .certificate:
            if let certificate = try? MembershipCertificate.decode(bytes) {
                require(certificate.encoded == bytes, "certificate re-encoding differs")
            }
        }
    }

    static func revocationList(_ text: String) {
        do {
            let list = try RevocationList.parse(text, path: "fuzz")
            let written = list.fingerprints.map(\.description).sorted().joined(separator: "\n")
            require((try? RevocationList.parse(written, path: "fuzz")) == list, "revocation list round trip")
        } catch {
            let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).count
            require(error.line.map { (1...lines).contains($0) } ?? false,
                    "a refusal at line \(String(describing: error.line)) of \(lines): \(error)")
        }
    }

    static func seeds() -> [(key: String, bytes: [UInt8])] {
        func file(_ kind: CredentialFile.Kind, _ bytes: [UInt8], _ transform: (String) -> String = { $0 }) -> [UInt8] {
            [UInt8(kinds.firstIndex(of: kind)!)] + Array(transform(CredentialFile.armor(bytes, as: kind)).utf8)
        }
        let revocation = UInt8(kinds.count)
        let dave = FuzzFixtures.dave.certificate.fingerprint.description
        return [
            ("ca-key", file(.authorityKey, FuzzFixtures.authorityKey.encoded)),
            ("ca", file(.authority, FuzzFixtures.authorityKey.authority.encoded)),
            ("node-key", file(.nodeKey, FuzzFixtures.alice.identity.encoded)),
            ("certificate", file(.certificate, FuzzFixtures.alice.certificate.encoded)),
            ("certificate-crlf", file(.certificate, FuzzFixtures.carol.certificate.encoded) {
                $0.replacingOccurrences(of: "\n", with: "\r\n")
            }),
            ("node-key-as-ca", file(.authority, FuzzFixtures.bob.identity.encoded) {
                $0.replacingOccurrences(of: "WOW NETWORK CA", with: "WOW NODE KEY")
            }),
            ("revoked", [revocation] + Array("# stolen laptop\n\(dave)\n\n\(dave.uppercased())  # twice\n".utf8)),
            ("revoked-bad-line", [revocation] + Array("# comment\nnot a fingerprint\n".utf8)),
        ]
    }
}
