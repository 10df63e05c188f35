import Metrics
import Synchronization

/// The lock's metrics. Labels carry only the key prefix (e.g. `sg:lock:channel`), never a channel id.
struct LockMetrics: Sendable {
    let acquireWait: Metrics.Timer
    let hold: Metrics.Timer
    let contention: Counter
    let renewals: Counter
    let fenceRejections: Counter
    private let prefix: String

    init(prefix: String) {
        self.prefix = prefix
        let dimensions = [("prefix", prefix)]
        acquireWait = Metrics.Timer(label: "sg_lock_acquire_wait_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        hold = Metrics.Timer(label: "sg_lock_hold_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        contention = Counter(label: "sg_lock_contention_total", dimensions: dimensions)
        renewals = Counter(label: "sg_lock_renewals_total", dimensions: dimensions)
        fenceRejections = Counter(label: "sg_lock_fence_rejections_total", dimensions: dimensions)
    }

    private static let cache = Mutex<[String: LockMetrics]>([:])

    /// The metrics for a prefix, created once: a lock is made per message, and creating metric
    /// objects is a registry lookup each.
    static func shared(prefix: String) -> LockMetrics {
        cache.withLock { cache in
            if let metrics = cache[prefix] { return metrics }
            let metrics = LockMetrics(prefix: prefix)
            cache[prefix] = metrics
            return metrics
        }
    }

    func leaseLost(_ cause: LeaseLossCause) {
        Counter(label: "sg_lock_lease_losses_total", dimensions: [("prefix", prefix), ("cause", cause.rawValue)]).increment()
    }
}
