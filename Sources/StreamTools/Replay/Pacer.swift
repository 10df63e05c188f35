/// When each entry of an import may be sent, as an offset from the start of the run.
///
/// `rate` caps throughput: entry `i` (from 0) goes no earlier than `i / rate` seconds.
/// `speed` keeps the original timing: entry `i` goes no earlier than the time between the
/// first entry's id and its own, divided by `speed`. With both, the later of the two wins.
public struct Pacer: Sendable {
    public let rate: Double?
    public let speed: Double?
    private var firstMilliseconds: UInt64?
    private var lastOffset: Duration = .zero

    public init(rate: Double? = nil, speed: Double? = nil) throws(PacingError) {
        if let rate, !(rate > 0 && rate.isFinite) { throw PacingError("--rate must be a positive number of entries per second, got \(rate)") }
        if let speed, !(speed > 0 && speed.isFinite) { throw PacingError("--speed must be a positive factor, got \(speed)") }
        self.rate = rate
        self.speed = speed
    }

    /// True when entries can go as fast as Redis takes them.
    public var isUnpaced: Bool { rate == nil && speed == nil }

    /// The earliest offset at which entry `index`, whose id is `id`, may be sent. Offsets never
    /// decrease: an entry older than its predecessor (an unsorted file) goes right after it.
    public mutating func offset(index: Int, id: StreamID?) -> Duration {
        var offset = Duration.zero
        if let rate {
            offset = max(offset, Self.seconds(Double(index) / rate))
        }
        if let speed, let id {
            let first = firstMilliseconds ?? id.milliseconds
            firstMilliseconds = first
            let elapsed = id.milliseconds > first ? Double(id.milliseconds - first) / 1000 : 0
            offset = max(offset, Self.seconds(elapsed / speed))
        }
        offset = max(offset, lastOffset)
        lastOffset = offset
        return offset
    }

    /// Clamped at a year: a huge gap between ids at a small speed must not overflow the conversion.
    private static func seconds(_ s: Double) -> Duration {
        .nanoseconds(Int64((min(max(s, 0), 365 * 86_400) * 1e9).rounded()))
    }
}

public struct PacingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
