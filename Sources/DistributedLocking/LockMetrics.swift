import Metrics
import Synchronization

/// The lock's metrics. Labels carry only the key prefix (e.g. `sg:lock:channel`), never a channel id.
struct LockMetrics: Sendable {
    let acquireWait: Metrics.Timer
    let hold: Metrics.Timer
    let contention: Counter
    let renewals: Counter
    let fenceRejections: Counter
    private let losses: [LeaseLossCause: Counter]

    /// The metrics for `prefix`, made once per prefix: a lock is created per message, and with a real
    /// backend every metric made is a registry lookup under a lock.
    static func forPrefix(_ prefix: String) -> LockMetrics {
        if let cached = cache.withLock({ $0[prefix] }) { return cached }
        let made = LockMetrics(prefix: prefix)
        cache.withLock { cache in
            // Prefixes come from code, not input, so a handful is expected; the bound is a safety net.
            if cache.count < 64 { cache[prefix] = made }
        }
        return made
    }

    private static let cache = Mutex<[String: LockMetrics]>([:])

    init(prefix: String) {
        let dimensions = [("prefix", prefix)]
        acquireWait = Metrics.Timer(label: "sg_lock_acquire_wait_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        hold = Metrics.Timer(label: "sg_lock_hold_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        contention = Counter(label: "sg_lock_contention_total", dimensions: dimensions)
        renewals = Counter(label: "sg_lock_renewals_total", dimensions: dimensions)
        fenceRejections = Counter(label: "sg_lock_fence_rejections_total", dimensions: dimensions)
        losses = Dictionary(uniqueKeysWithValues: LeaseLossCause.allCases.map {
            ($0, Counter(label: "sg_lock_lease_losses_total", dimensions: [("prefix", prefix), ("cause", $0.rawValue)]))
        })
    }

    func leaseLost(_ cause: LeaseLossCause) {
        losses[cause]?.increment()
    }
}
