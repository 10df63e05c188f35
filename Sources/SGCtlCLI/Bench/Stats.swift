import Foundation
import Histogram

/// Latency samples in nanoseconds, reported as percentiles, in an HDR histogram: constant memory
/// however long the run, and percentiles within 0.1% of the recorded values.
struct LatencySamples {
    /// One nanosecond to an hour, three significant digits.
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000,
                                              numberOfSignificantValueDigits: .three)

    init() {}

    var count: UInt64 { histogram.totalCount }

    mutating func add(_ d: Duration) {
        let (s, atto) = d.components
        let nanoseconds = UInt64(max(s, 0)) * 1_000_000_000 + UInt64(max(atto, 0) / 1_000_000_000)
        // Past the hour the histogram tracks, a sample counts as the hour rather than being lost.
        _ = histogram.record(min(max(nanoseconds, 1), histogram.highestTrackableValue))
    }

    /// The p-th percentile (0...100) in microseconds.
    func percentileMicros(_ p: Double) -> Double {
        guard histogram.totalCount > 0 else { return 0 }
        return Double(histogram.valueAtPercentile(p)) / 1000
    }
}

func seconds(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return Double(s) + Double(atto) / 1e18
}

/// Prints one JSON object line, keys sorted so runs diff cleanly.
func printJSONLine(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
