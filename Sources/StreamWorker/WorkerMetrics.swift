import Foundation
import Metrics
import RedisClient
import Synchronization

/// The worker's metrics (`sg_` names, never a per-channel label).
///
/// Every metric object is made once, when the worker starts: with a real backend each
/// `Counter(label:)` is a registry lookup under a lock, which the per-message path should not pay.
/// Making them up front also makes every series visible at zero before its first event, so
/// alerts on `rate()` or `increase()` have something to evaluate.
struct WorkerMetrics: Sendable {
    /// Commit outcomes: applied (processed), duplicate, stale (fence) and lost (token).
    let applied: Counter
    let duplicate: Counter
    let stale: Counter
    let lost: Counter
    let handlerErrors: Counter
    let retryLeaseLost: Counter
    let retryHandlerError: Counter
    let retryCommitError: Counter
    let gapTimeouts: Counter
    let reclaimedEntries: Counter
    let endToEndLatency: Metrics.Timer
    let inFlightChannels: Gauge
    let inFlightMessages: Gauge
    private let deadLetters: [String: Counter]

    /// Reasons known in advance; others (there are none today) are made on first use.
    static let deadLetterReasons = [
        "missing_channel", "empty_channel", "channel_too_long", "channel_not_utf8", "channel_control_characters",
        "invalid_seq", "repeated_channel", "repeated_seq", "oversized", "max_deliveries",
    ]

    init() {
        func commits(_ outcome: String) -> Counter { Counter(label: "sg_commits_total", dimensions: [("outcome", outcome)]) }
        func retries(_ cause: String) -> Counter { Counter(label: "sg_retries_total", dimensions: [("cause", cause)]) }
        applied = commits("applied")
        duplicate = commits("duplicate")
        stale = commits("stale")
        lost = commits("lost")
        handlerErrors = Counter(label: "sg_handler_errors_total")
        retryLeaseLost = retries("lease_lost")
        retryHandlerError = retries("handler_error")
        retryCommitError = retries("commit_error")
        gapTimeouts = Counter(label: "sg_gap_timeouts_total")
        reclaimedEntries = Counter(label: "sg_reclaimed_total")
        endToEndLatency = Metrics.Timer(label: "sg_end_to_end_seconds", preferredDisplayUnit: .seconds)
        inFlightChannels = Gauge(label: "sg_in_flight_channels")
        inFlightMessages = Gauge(label: "sg_in_flight_messages")
        deadLetters = Dictionary(uniqueKeysWithValues: Self.deadLetterReasons.map {
            ($0, Counter(label: "sg_dead_lettered_total", dimensions: [("reason", $0)]))
        })
    }

    func committed(_ outcome: String) {
        switch outcome {
        case "applied": applied.increment()
        case "duplicate": duplicate.increment()
        case "stale": stale.increment()
        case "lost": lost.increment()
        default: Counter(label: "sg_commits_total", dimensions: [("outcome", outcome)]).increment()
        }
    }

    func deadLettered(_ reason: String) {
        (deadLetters[reason] ?? Counter(label: "sg_dead_lettered_total", dimensions: [("reason", reason)])).increment()
    }

    func handlerError() { handlerErrors.increment() }

    func retry(_ cause: String) {
        switch cause {
        case "lease_lost": retryLeaseLost.increment()
        case "handler_error": retryHandlerError.increment()
        case "commit_error": retryCommitError.increment()
        default: Counter(label: "sg_retries_total", dimensions: [("cause", cause)]).increment()
        }
    }

    func gapTimeout() { gapTimeouts.increment() }
    func reclaimed(_ n: Int) { reclaimedEntries.increment(by: n) }

    func endToEnd(_ nanoseconds: Int64) {
        endToEndLatency.recordNanoseconds(nanoseconds)
    }

    /// Records the time from the entry's id (the Redis server's clock when it was added) to now.
    /// The worker's clock may differ from the server's; a negative difference counts as zero.
    func endToEnd(entryID: String, now: Date = Date()) {
        if let nanoseconds = Self.endToEndNanoseconds(entryID: entryID, now: now) { endToEnd(nanoseconds) }
    }

    /// Milliseconds from the id's time to `now`, in nanoseconds; nil for an id that is not `<ms>-<seq>`.
    static func endToEndNanoseconds(entryID: String, now: Date) -> Int64? {
        guard let id = StreamID(entryID) else { return nil }
        let nowMs = Int64(now.timeIntervalSince1970 * 1000)
        return max(0, nowMs - Int64(clamping: id.ms)) * 1_000_000
    }
}

/// Per-stream gauges of the consumer group, sampled from `XINFO GROUPS`.
final class GroupMetrics: Sendable {
    private struct Gauges {
        var pending: Gauge
        /// nil while Redis cannot tell the lag.
        var lag: Gauge?
    }
    private let gauges = Mutex<[String: Gauges]>([:])
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// Pending entries (delivered, not acknowledged) and lag (entries not yet delivered) of one stream's group.
    ///
    /// Redis reports no lag when it cannot tell (after XDEL or XTRIM past the group's position). The
    /// series is then removed rather than set to a sentinel, which `max` or `rate` would take for a value.
    func record(stream: String, pending: Int64, lag: Int64?) {
        let (pendingGauge, lagGauge, dropped) = gauges.withLock { all -> (Gauge, Gauge?, Gauge?) in
            var g = all[stream] ?? Gauges(pending: Gauge(label: "sg_group_pending", dimensions: [("stream", stream)], factory: factory), lag: nil)
            var dropped: Gauge?
            if lag == nil {
                dropped = g.lag
                g.lag = nil
            } else if g.lag == nil {
                g.lag = Gauge(label: "sg_group_lag", dimensions: [("stream", stream)], factory: factory)
            }
            all[stream] = g
            return (g.pending, g.lag, dropped)
        }
        pendingGauge.record(pending)
        if let lag { lagGauge?.record(lag) }
        dropped?.destroy()
    }
}

/// Counters for the Redis client's connections.
public enum RedisConnectionMetrics {
    /// Hooks that count reconnects (`sg_redis_reconnects_total`) and failed connection attempts
    /// (`sg_redis_connect_failures_total`); give them to `RedisClient(configuration:logger:events:)`
    /// after the metrics backend is bootstrapped.
    public static func events() -> RedisConnectionEvents {
        let reconnects = Counter(label: "sg_redis_reconnects_total")
        let failures = Counter(label: "sg_redis_connect_failures_total")
        return RedisConnectionEvents(reconnected: { reconnects.increment() }, connectFailed: { failures.increment() })
    }
}
