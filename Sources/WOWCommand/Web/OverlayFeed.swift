import Foundation
import NIOConcurrencyHelpers
import NIOCore
import WOWKit
import WOWSimulator

/// What a web view shows, as it grows: the overlay's events (`OverlayEvent`, encoded once as JSON) and, for a
/// single node (`wow run --web`), the node's latest status. Written by whoever runs the nodes (a node's event
/// loop, the simulator's thread) and read by each viewer's event stream, so it is locked; appends and reads
/// are short.
final class OverlayFeed: Sendable {
    /// What the page draws: one node and its peers, a live overlay, or a recorded run to play back.
    enum Mode: String, Sendable {
        case node
        case overlay
        case timeline
    }

    /// How far one viewer has read.
    struct Cursor {
        var events = 0
        var statusVersion = 0
        var sentHello = false
        var sentFinished = false
    }

    private struct State {
        var events: [String] = []
        var status: String?
        var statusVersion = 0
        var finished = false
    }

    let mode: Mode
    /// A title for the page (the node's name, the demo's or simulation's size).
    let title: String
    /// Time zero of a live feed (`wow demo`, `wow run`): its events are stamped in seconds since.
    let startedAt = NIODeadline.now()
    private let state = NIOLockedValueBox(State())

    init(mode: Mode, title: String) {
        self.mode = mode
        self.title = title
    }

    func append(_ event: OverlayEvent) {
        let line = Self.json(event)
        state.withLockedValue { $0.events.append(line) }
    }

    /// Seconds since `startedAt`.
    var secondsSinceStart: Double { Double((NIODeadline.now() - startedAt).nanoseconds) / 1e9 }

    /// A line on what a live run does now, stamped with the time since `startedAt`.
    func note(_ text: String) {
        append(OverlayEvent(seconds: secondsSinceStart, node: nil, kind: .note(text)))
    }

    /// The node's status as JSON (`NodeStatus`), replacing the previous one.
    func setStatus(_ json: String) {
        state.withLockedValue {
            $0.status = json
            $0.statusVersion += 1
        }
    }

    /// Marks the run as over (a simulation that finished): the timeline is complete.
    func finish() {
        state.withLockedValue { $0.finished = true }
    }

    var eventCount: Int { state.withLockedValue { $0.events.count } }

    /// The server-sent events a viewer at `cursor` has not had yet (`hello` first, then `events` batches of
    /// at most 20,000, `status`, `finished`); advances the cursor. Empty when there is nothing new.
    func serverSentEvents(after cursor: inout Cursor) -> String {
        let (events, status, finished) = state.withLockedValue { state -> (ArraySlice<String>, String?, Bool) in
            let end = min(state.events.count, cursor.events + 20_000)
            let status = state.statusVersion != cursor.statusVersion ? state.status : nil
            cursor.statusVersion = state.statusVersion
            // Finished only once every event has gone out.
            return (state.events[cursor.events..<end], status, state.finished && end == state.events.count)
        }
        var text = ""
        if !cursor.sentHello {
            cursor.sentHello = true
            text += "event: hello\ndata: {\"mode\":\"\(mode.rawValue)\",\"title\":\(Self.quoted(title))}\n\n"
        }
        if !events.isEmpty {
            cursor.events += events.count
            text += "event: events\ndata: [" + events.joined(separator: ",") + "]\n\n"
        }
        if let status { text += "event: status\ndata: \(status)\n\n" }
        if finished && !cursor.sentFinished {
            cursor.sentFinished = true
            text += "event: finished\ndata: {}\n\n"
        }
        return text
    }

    /// One event as a JSON object: `t` seconds, `k` kind, `n` node and `p` peer (40 hex digits), and the
    /// kind's fields.
    static func json(_ event: OverlayEvent) -> String {
        var text = "{\"t\":" + String(format: "%.3f", event.seconds)
        if let node = event.node { text += ",\"n\":\"\(node.hex)\"" }
        switch event.kind {
        case .joined(let name, let detail):
            text += ",\"k\":\"join\",\"name\":\(quoted(name)),\"d\":\(quoted(detail))"
        case .routable: text += ",\"k\":\"routable\""
        case .farLinks: text += ",\"k\":\"far\""
        case .left: text += ",\"k\":\"leave\""
        case .linked(let peer, let types, let transport, let via, let pathSwitch):
            text += ",\"k\":\"link\",\"p\":\"\(peer.hex)\",\"ty\":[" + types.map(quoted).joined(separator: ",")
                + "],\"tr\":\(quoted(transport))"
            if let via { text += ",\"via\":\"\(via.hex)\"" }
            if pathSwitch { text += ",\"sw\":true" }
        case .unlinked(let peer): text += ",\"k\":\"unlink\",\"p\":\"\(peer.hex)\""
        case .note(let note): text += ",\"k\":\"note\",\"text\":\(quoted(note))"
        }
        return text + "}"
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"  // never closes a script or opens a tag, wherever the text lands
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
