import Foundation
import Metrics
@testable import OperatorHTTP
import Prometheus
@testable import StreamWorker
import TestSupport
import Testing

/// `/metrics` read the way Prometheus reads it: prometheus_client's parser over a real worker's
/// scrape, checked against the metric reference in docs/operations.md.
@Suite(.serialized) struct MetricsExpositionTests {
    struct Family: Decodable {
        struct Sample: Decodable {
            var name: String
            var labels: [String: String]
            var value: Double
        }
        var name: String
        var type: String
        var help: String
        var samples: [Sample]
    }

    /// `metric → type` from the metric reference table of docs/operations.md.
    static func documentedTypes() throws -> [String: String] {
        let text = try String(contentsOf: WorkerScrape.repository.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        var types: [String: String] = [:]
        for match in text.matches(of: /\n\| `((?:sg|process)_[a-z0-9_]+)` \| (counter|gauge|histogram) \|/) {
            types[String(match.1)] = String(match.2)
        }
        return types
    }

    /// The families of Prometheus text, parsed by prometheus_client (a text it refuses fails the test).
    static func parse(_ text: String) async throws -> [Family] {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("sg-metrics-\(UUID().uuidString.prefix(8)).txt")
        try text.write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let (status, output) = try await TestPython.run("metric_families.py", [input.path])
        try #require(status == 0, "prometheus_client refused the text:\n\(output)")
        return try JSONDecoder().decode([Family].self, from: Data(output.utf8))
    }

    @Test func everySeriesOfARealScrapeHasItsDocumentedTypeAndAHelpLine() async throws {
        let documented = try Self.documentedTypes()
        #expect(documented.count >= 25, "the metric reference table was not found: \(documented)")
        let families = try await Self.parse(try await WorkerScrape.take())

        var exported: Set<String> = []
        for family in families {
            // prometheus_client drops a counter's `_total` from the family name.
            let name = family.type == "counter" ? family.name + "_total" : family.name
            exported.insert(name)
            #expect(documented[name] == family.type, "\(name) is exported as \(family.type), documented as \(documented[name] ?? "nothing")")
            #expect(!family.help.isEmpty, "\(name) has no HELP line")
            if name.hasPrefix("sg_") { #expect(family.help == MetricHelp.text[name], "\(name)'s HELP is not MetricHelp's") }
            #expect(!family.samples.isEmpty, "\(name) has no sample")
        }
        for name in documented.keys.sorted() {
            #expect(exported.contains(name), "docs/operations.md documents \(name), which the worker does not export")
        }

        let build = try #require(families.first { $0.name == "sg_build_info" }?.samples.first)
        #expect(build.value == 1 && build.labels["version"]?.isEmpty == false && build.labels["commit"]?.isEmpty == false)
        #expect(families.first { $0.name == "sg_ready" }?.samples.first?.value == 1)
        let lag = try #require(families.first { $0.name == "sg_group_lag" }?.samples.first)
        #expect(lag.value >= 0)
        let rss = try #require(families.first { $0.name == "process_resident_memory_bytes" }?.samples.first)
        #expect(rss.value > 1_000_000, "a Swift worker's resident memory is above a megabyte")
        #expect(try #require(families.first { $0.name == "process_open_fds" }?.samples.first).value >= 3)
        let start = try #require(families.first { $0.name == "process_start_time_seconds" }?.samples.first).value
        #expect(abs(start - Date().timeIntervalSince1970) < 3600, "the worker started within the hour, not at \(start)")
    }

    @Test func aLagRedisCannotTellRemovesTheSeriesInsteadOfReportingASentinel() throws {
        let registry = PrometheusCollectorRegistry()
        let groups = GroupMetrics(factory: MetricsBackend.factory(registry: registry))
        groups.record(stream: "in", pending: 2, lag: 7)
        #expect(registry.emitToString().contains("sg_group_lag{stream=\"in\"} 7"))
        groups.record(stream: "in", pending: 2, lag: nil)
        let unknown = registry.emitToString()
        #expect(!unknown.contains("sg_group_lag{"), "\(unknown)")
        #expect(unknown.contains("sg_group_pending{stream=\"in\"} 2"))
        groups.record(stream: "in", pending: 0, lag: 0)
        #expect(registry.emitToString().contains("sg_group_lag{stream=\"in\"} 0"))
    }

    @Test func theBackendGivesEveryDescribedMetricItsHelpLine() {
        let registry = PrometheusCollectorRegistry()
        let factory = MetricsBackend.factory(registry: registry)
        factory.makeCounter(label: "sg_commits_total", dimensions: [("outcome", "applied")]).increment(by: 1)
        factory.makeTimer(label: "sg_end_to_end_seconds", dimensions: []).recordNanoseconds(1_000_000)
        factory.makeRecorder(label: "sg_in_flight_channels", dimensions: [], aggregate: false).record(Int64(3))
        let text = registry.emitToString()
        for name in ["sg_commits_total", "sg_end_to_end_seconds", "sg_in_flight_channels"] {
            #expect(text.contains("# HELP \(name) \(MetricHelp.text[name]!)\n"), "\(text)")
        }
        #expect(text.contains("# TYPE sg_end_to_end_seconds histogram"))
        #expect(text.contains("sg_end_to_end_seconds_bucket{le=\"0.005\"} 1"), "the end-to-end buckets start at 5 ms")
    }

    @Test func processStatisticsParseFromProcFiles() {
        #expect(ProcessMetrics.parseStatm("2048 512 100 1 0 300 0\n")! == (2048, 512))
        #expect(ProcessMetrics.parseStatm("garbage") == nil)
        // The command name may hold spaces and parentheses; field 22 counts from after the last ')'.
        let stat = "4242 (stream (con) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 4 0 987654 1000 200"
        #expect(ProcessMetrics.parseStartTicks(stat) == 987654)
        #expect(ProcessMetrics.parseStartTicks("1 (x) S 1") == nil)
        #expect(ProcessMetrics.parseBootTime("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n") == 1_700_000_000)
        let sample = ProcessMetrics.sample()
        #expect(sample.cpuSeconds > 0 && (sample.openFDs ?? 0) >= 3 && (sample.residentBytes ?? 0) > 0)
        #expect(sample.text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "))
    }
}
