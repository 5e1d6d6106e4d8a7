/// The summaries a report gives of measured values: percentiles and hop-count statistics. `wow sim` and
/// `wow demo` report the same shapes.
public enum SimulationStatistics {
    /// Mean, median, 99th percentile, maximum and histogram of hop counts.
    public static func hops(_ hops: [Int]) -> SimulationReport.Hops {
        let sorted = hops.sorted()
        var histogram: [String: Int] = [:]
        for h in sorted { histogram[String(h), default: 0] += 1 }
        return SimulationReport.Hops(
            mean: sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count),
            p50: percentile(sorted.map(Double.init), 0.5), p99: percentile(sorted.map(Double.init), 0.99),
            max: sorted.last ?? 0, histogram: histogram)
    }

    /// The `q` quantile (0...1) of sorted values, nearest rank; 0 for none.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// Median, 90th and 99th percentiles, maximum and count of the values.
    public static func percentiles(_ values: [Double]) -> SimulationReport.Percentiles {
        let sorted = values.sorted()
        return .init(p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99),
                     max: sorted.last ?? 0, count: sorted.count)
    }
}
