import Foundation

/// Latency samples in nanoseconds, reported as percentiles.
struct LatencySamples {
    private(set) var values: [UInt64] = []

    init(capacity: Int) { values.reserveCapacity(capacity) }

    mutating func add(_ d: Duration) {
        let (s, atto) = d.components
        values.append(UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000))
    }

    /// The p-th percentile (0...100) in microseconds, nearest-rank.
    func percentileMicros(_ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
        return Double(sorted[rank]) / 1000
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
