import Metrics

/// The worker's metrics (`sg_` names, never a per-channel label).
struct WorkerMetrics: Sendable {
    func committed(_ outcome: String) {
        Counter(label: "sg_commits_total", dimensions: [("outcome", outcome)]).increment()
    }
    func deadLettered(_ reason: String) {
        Counter(label: "sg_dead_lettered_total", dimensions: [("reason", reason)]).increment()
    }
    func handlerError() { Counter(label: "sg_handler_errors_total").increment() }
    func retry(_ cause: String) { Counter(label: "sg_retries_total", dimensions: [("cause", cause)]).increment() }
    func gapTimeout() { Counter(label: "sg_gap_timeouts_total").increment() }
    func reclaimed(_ n: Int) { Counter(label: "sg_reclaimed_total").increment(by: n) }
    func endToEnd(_ nanoseconds: Int64) {
        Metrics.Timer(label: "sg_end_to_end_seconds", preferredDisplayUnit: .seconds).recordNanoseconds(nanoseconds)
    }
}
