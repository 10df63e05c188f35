/// Notices when everything a worker acknowledges is a duplicate: a replay into a state that has
/// already seen those seqs. The worker then says so at info level, at most once per `interval`,
/// with counts, instead of acknowledging thousands of messages in silence.
///
/// Pure: the caller passes the time, so it is tested without sleeping.
public struct DuplicateStreak: Sendable {
    /// What to log.
    public struct Report: Sendable, Equatable {
        /// Duplicates in a row since the last report (or since the streak began).
        public var duplicates: Int
        /// Distinct channels among them (counted up to ``DuplicateStreak/maxChannels``).
        public var channels: Int

        public init(duplicates: Int, channels: Int) {
            self.duplicates = duplicates
            self.channels = channels
        }
    }

    public let threshold: Int
    public let interval: Duration
    static let maxChannels = 10_000

    private var duplicates = 0
    private var channels = Set<String>()
    private var lastReport: ContinuousClock.Instant?

    /// - Parameters:
    ///   - threshold: duplicates in a row before the first report (the worker uses its batch size:
    ///     a whole read acknowledged without applying anything).
    ///   - interval: the least time between two reports.
    public init(threshold: Int, interval: Duration = .seconds(30)) {
        self.threshold = max(1, threshold)
        self.interval = interval
    }

    /// A message was applied: the streak, if any, is over.
    public mutating func applied() {
        duplicates = 0
        channels.removeAll(keepingCapacity: true)
    }

    /// A message was acknowledged as a duplicate; returns what to log, if it is time to.
    public mutating func duplicate(channel: String, now: ContinuousClock.Instant) -> Report? {
        duplicates += 1
        if channels.count < Self.maxChannels { channels.insert(channel) }
        guard duplicates >= threshold else { return nil }
        if let lastReport, now < lastReport + interval { return nil }
        let report = Report(duplicates: duplicates, channels: channels.count)
        lastReport = now
        duplicates = 0
        channels.removeAll(keepingCapacity: true)
        return report
    }
}
