import Foundation
import WOWKit
import WOWSimulator

/// The charts of a simulation run as one self-contained SVG (`wow sim --plot FILE.svg`), written by hand: on
/// the left the distribution (CDF) of join times, from a node's start until it is routable and until it holds
/// its far links; on the right the histogram of the hop counts of the measured messages.
///
/// Each curve is a `polyline` with one point per node (id `cdf-routable`, `cdf-far`); each hop count present
/// is one `rect` of class `bar` (id `hops-N`), so scripts can read the numbers back.
public struct SimulationPlot: Sendable {
    /// Seconds from start to routable, one per node that got there.
    public var routable: [Double]
    /// Seconds from start to holding far links, one per node that got there.
    public var far: [Double]
    /// Hop count -> number of messages.
    public var hops: [Int: Int]
    public var title: String

    public init(routable: [Double], far: [Double], hops: [Int: Int], title: String) {
        self.routable = routable
        self.far = far
        self.hops = hops
        self.title = title
    }

    /// The plot of a finished simulation: its nodes' join times and the hops of its first check.
    public init(simulation: OverlaySimulation, report: SimulationReport) {
        let routable = simulation.nodes.compactMap { n in n.routableAt.map { ($0 - n.startedAt).seconds } }
        let far = simulation.nodes.compactMap { n in n.farLinksAt.map { ($0 - n.startedAt).seconds } }
        var hops: [Int: Int] = [:]
        for (key, count) in report.hops.histogram { if let h = Int(key) { hops[h] = count } }
        self.init(routable: routable, far: far, hops: hops,
                  title: "WOW simulation: \(report.nodes) nodes, seed \(report.seed), RTT \(Int(report.rtt_ms[0]))-\(Int(report.rtt_ms[1])) ms")
    }

    /// Writes the SVG to `path`.
    public func write(to path: String) throws {
        do {
            try svg().write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw SimulationError.setup("cannot write the plot to \(path): \(error.localizedDescription)")
        }
    }

    // MARK: - Drawing

    private static let width = 960.0
    private static let height = 440.0
    /// A panel's plotting area, inside its margins.
    private struct Frame {
        var left: Double, top: Double, width: Double, height: Double
        var right: Double { left + width }
        var bottom: Double { top + height }
    }

    private static let routableColour = "#1f77b4"
    private static let farColour = "#d62728"
    private static let barColour = "#2ca02c"

    /// The whole document.
    public func svg() -> String {
        var out = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(Self.height))" viewBox="0 0 \(Int(Self.width)) \(Int(Self.height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(Self.width))" height="\(Int(Self.height))" fill="white"/>
            <text x="\(Self.n(Self.width / 2))" y="24" text-anchor="middle" font-size="16" font-weight="bold">\(Self.escaped(title))</text>

            """
        out += joinTimes(in: Frame(left: 70, top: 60, width: 380, height: 300))
        out += hopHistogram(in: Frame(left: 560, top: 60, width: 360, height: 300))
        out += "</svg>\n"
        return out
    }

    /// The CDF of both join times; the time axis is logarithmic when the times span more than a decade.
    private func joinTimes(in frame: Frame) -> String {
        var out = "<g id=\"join-times\">\n"
        out += "<text x=\"\(Self.n(frame.left + frame.width / 2))\" y=\"\(Self.n(frame.top - 14))\" text-anchor=\"middle\" font-size=\"14\">Join time CDF</text>\n"
        let all = (routable + far).filter { $0 > 0 }
        let low = all.min() ?? 0.1
        let high = max(all.max() ?? 1, low * 1.000_001)
        let logarithmic = high / low > 10
        let axis: (min: Double, max: Double, ticks: [Double])
        if logarithmic {
            axis = Self.logTicks(low, high)
        } else {
            let ticks = Self.linearTicks(0, high)
            axis = (0, ticks.last ?? high, ticks)
        }
        func x(_ v: Double) -> Double {
            if logarithmic {
                let value = Swift.max(v, axis.min)
                return frame.left + frame.width * (log10(value) - log10(axis.min)) / (log10(axis.max) - log10(axis.min))
            }
            return frame.left + frame.width * (v - axis.min) / (axis.max - axis.min)
        }
        func y(_ fraction: Double) -> Double { frame.bottom - frame.height * fraction }
        out += Self.axes(frame)
        for tick in axis.ticks {
            out += Self.xTick(at: x(tick), frame: frame, label: Self.label(tick))
        }
        for fraction in stride(from: 0.0, through: 1.0, by: 0.25) {
            out += Self.yTick(at: y(fraction), frame: frame, label: "\(Int(fraction * 100))%")
        }
        out += "<text x=\"\(Self.n(frame.left + frame.width / 2))\" y=\"\(Self.n(frame.bottom + 40))\" text-anchor=\"middle\">seconds after the node's start\(logarithmic ? " (log scale)" : "")</text>\n"
        out += "<text transform=\"translate(\(Self.n(frame.left - 48)),\(Self.n(frame.top + frame.height / 2))) rotate(-90)\" text-anchor=\"middle\">nodes (cumulative)</text>\n"
        for (id, values, colour) in [("cdf-routable", routable, Self.routableColour), ("cdf-far", far, Self.farColour)] {
            let sorted = values.sorted()
            let points = sorted.enumerated().map { "\(Self.n(x($1))),\(Self.n(y(Double($0 + 1) / Double(sorted.count))))" }
            out += "<polyline id=\"\(id)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
        }
        // Legend, bottom right inside the frame.
        let legendX = frame.right - 170
        let legendY = frame.bottom - 46
        for (row, (label, colour, count)) in [("join → routable", Self.routableColour, routable.count),
                                              ("join → far links", Self.farColour, far.count)].enumerated() {
            let rowY = legendY + Double(row) * 18
            out += "<line x1=\"\(Self.n(legendX))\" y1=\"\(Self.n(rowY))\" x2=\"\(Self.n(legendX + 24))\" y2=\"\(Self.n(rowY))\" stroke=\"\(colour)\" stroke-width=\"2\"/>\n"
            out += "<text x=\"\(Self.n(legendX + 30))\" y=\"\(Self.n(rowY + 4))\">\(label) (\(count) nodes)</text>\n"
        }
        return out + "</g>\n"
    }

    /// One bar per hop count seen, with its count above it.
    private func hopHistogram(in frame: Frame) -> String {
        var out = "<g id=\"hop-histogram\">\n"
        out += "<text x=\"\(Self.n(frame.left + frame.width / 2))\" y=\"\(Self.n(frame.top - 14))\" text-anchor=\"middle\" font-size=\"14\">Hops per message</text>\n"
        out += Self.axes(frame)
        let counts = hops.filter { $0.value > 0 }
        let highestHop = counts.keys.max() ?? 1
        let lowestHop = min(counts.keys.min() ?? 1, 1)
        let slots = Double(highestHop - lowestHop + 1)
        let yTicks = Self.linearTicks(0, Double(counts.values.max() ?? 1))
        let top = yTicks.last ?? 1
        func y(_ v: Double) -> Double { frame.bottom - frame.height * v / top }
        for tick in yTicks { out += Self.yTick(at: y(tick), frame: frame, label: Self.label(tick)) }
        let slot = frame.width / slots
        for hop in lowestHop...highestHop {
            let centre = frame.left + slot * (Double(hop - lowestHop) + 0.5)
            out += Self.xTick(at: centre, frame: frame, label: "\(hop)")
            guard let count = counts[hop] else { continue }
            let barTop = y(Double(count))
            out += "<rect id=\"hops-\(hop)\" class=\"bar\" x=\"\(Self.n(centre - slot * 0.35))\" y=\"\(Self.n(barTop))\" width=\"\(Self.n(slot * 0.7))\" height=\"\(Self.n(frame.bottom - barTop))\" fill=\"\(Self.barColour)\"><title>\(hop) hops: \(count) messages</title></rect>\n"
            out += "<text x=\"\(Self.n(centre))\" y=\"\(Self.n(barTop - 4))\" text-anchor=\"middle\" font-size=\"10\">\(count)</text>\n"
        }
        out += "<text x=\"\(Self.n(frame.left + frame.width / 2))\" y=\"\(Self.n(frame.bottom + 40))\" text-anchor=\"middle\">overlay hops</text>\n"
        out += "<text transform=\"translate(\(Self.n(frame.left - 48)),\(Self.n(frame.top + frame.height / 2))) rotate(-90)\" text-anchor=\"middle\">messages</text>\n"
        return out + "</g>\n"
    }

    private static func axes(_ frame: Frame) -> String {
        "<path d=\"M\(n(frame.left)),\(n(frame.top)) V\(n(frame.bottom)) H\(n(frame.right))\" fill=\"none\" stroke=\"black\"/>\n"
    }

    private static func xTick(at x: Double, frame: Frame, label: String) -> String {
        "<line x1=\"\(n(x))\" y1=\"\(n(frame.bottom))\" x2=\"\(n(x))\" y2=\"\(n(frame.bottom + 5))\" stroke=\"black\"/>"
            + "<text x=\"\(n(x))\" y=\"\(n(frame.bottom + 18))\" text-anchor=\"middle\">\(label)</text>\n"
    }

    private static func yTick(at y: Double, frame: Frame, label: String) -> String {
        "<line x1=\"\(n(frame.left - 5))\" y1=\"\(n(y))\" x2=\"\(n(frame.right))\" y2=\"\(n(y))\" stroke=\"#dddddd\"/>"
            + "<line x1=\"\(n(frame.left - 5))\" y1=\"\(n(y))\" x2=\"\(n(frame.left))\" y2=\"\(n(y))\" stroke=\"black\"/>"
            + "<text x=\"\(n(frame.left - 8))\" y=\"\(n(y + 4))\" text-anchor=\"end\">\(label)</text>\n"
    }

    /// Ticks at 1, 2, 5 times powers of ten from 0 to at least `high`, about five of them.
    static func linearTicks(_ low: Double, _ high: Double) -> [Double] {
        let span = max(high - low, 1e-9)
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var ticks: [Double] = []
        var tick = low
        while tick < high + step * 0.999 {
            ticks.append(tick)
            if tick >= high { break }
            tick += step
        }
        return ticks
    }

    /// Ticks at 1, 2, 5 times powers of ten covering [low, high], and the axis ends they give.
    static func logTicks(_ low: Double, _ high: Double) -> (min: Double, max: Double, ticks: [Double]) {
        var candidates: [Double] = []
        var decade = pow(10, floor(log10(low)))
        while true {
            candidates += [decade, 2 * decade, 5 * decade]
            if decade * 10 >= high {
                candidates.append(decade * 10)
                break
            }
            decade *= 10
        }
        let axisMin = candidates.last { $0 <= low } ?? candidates[0]
        let axisMax = candidates.first { $0 >= high } ?? candidates[candidates.count - 1]
        return (axisMin, axisMax, candidates.filter { $0 >= axisMin && $0 <= axisMax })
    }

    private static func label(_ v: Double) -> String { String(format: "%g", v) }
    /// A coordinate with one decimal.
    private static func n(_ v: Double) -> String { String(format: "%.1f", v) }

    private static func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
