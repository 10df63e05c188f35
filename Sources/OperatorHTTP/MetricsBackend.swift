import Metrics
import Prometheus

/// swift-metrics backed by a Prometheus registry, with help text and histogram buckets chosen per metric.
public enum MetricsBackend {
    /// Buckets of the duration histograms, by metric name. Lock waits are usually well under a
    /// millisecond on a quiet channel and seconds on a contended one; holds span the handler's
    /// time; end-to-end latency includes queueing and can reach minutes in a backlog.
    public static let durationBuckets: [String: [Duration]] = [
        "sg_lock_acquire_wait_seconds": milliseconds([0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]),
        "sg_lock_hold_seconds": milliseconds([1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000]),
        "sg_end_to_end_seconds": milliseconds([5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000]),
    ]

    /// A factory writing to `registry` with ``durationBuckets`` and ``MetricHelp``.
    public static func factory(registry: PrometheusCollectorRegistry) -> DescribedMetricsFactory {
        DescribedMetricsFactory(registry: registry, help: MetricHelp.text, durationBuckets: durationBuckets)
    }

    /// Makes a registry the process's swift-metrics backend and returns it, for `/metrics`.
    /// Call once, at start, before any metric is created: metrics made earlier stay no-ops.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(factory(registry: registry))
        return registry
    }

    private static func milliseconds(_ values: [Double]) -> [Duration] {
        values.map { .microseconds(Int64($0 * 1000)) }
    }
}
