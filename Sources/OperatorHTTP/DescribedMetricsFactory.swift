import CoreMetrics
import Prometheus

/// swift-metrics on a Prometheus registry, giving each metric its ``MetricHelp`` text and its
/// histogram buckets. swift-prometheus's own factory registers every metric without help, and its
/// registry refuses a second registration of a name with different help, so describing metrics
/// has to happen here, where they are made.
public struct DescribedMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry
    private let help: [String: String]
    private let durationBuckets: [String: [Duration]]
    /// Makes what needs no description (value histograms, which the worker does not use) and destroys.
    private let fallback: PrometheusMetricsFactory

    public init(registry: PrometheusCollectorRegistry, help: [String: String], durationBuckets: [String: [Duration]]) {
        self.registry = registry
        self.help = help
        self.durationBuckets = durationBuckets
        var fallback = PrometheusMetricsFactory(registry: registry)
        fallback.durationHistogramBuckets = durationBuckets
        self.fallback = fallback
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        // An empty unit adds nothing to the name, so the label stays the metric's whole name.
        MetricNameDescriptor(metricName: label, unitName: "", helpText: help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = durationBuckets[label] ?? fallback.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }

    public func destroyCounter(_ handler: any CounterHandler) { fallback.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { fallback.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { fallback.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { fallback.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { fallback.destroyTimer(handler) }
}
