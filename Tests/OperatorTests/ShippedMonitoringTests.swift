import Foundation
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// A real stream-consumer that has committed messages, dead-lettered one, and sampled its group,
/// so that every series it can export is in its scrape.
enum WorkerScrape {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `/metrics` text of such a worker, which is stopped again before this returns.
    static func take() async throws -> String {
        let admin = try TestRedis.client()
        defer { admin.close() }
        // Partitioned, so the partition series are in the scrape too.
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey(), partitions: 4)
        let stream = keys.prefix + ":in"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-scrape-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let worker = try WorkerProcess([
            "--redis-url", try TestRedis.url(), "--stream", stream, "--group", "g", "--consumer", "scrape-1",
            "--key-prefix", keys.prefix, "--partitions", "4", "--block-ms", "200", "--metrics-port", "0", "--metrics-host", "127.0.0.1",
        ], logPath: directory.appendingPathComponent("worker.log").path)
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"

        let producer = Producer(client: admin, keys: keys)
        for i in 0..<3 { try await producer.send(stream: stream, channel: "scrape", fields: [StreamField("n", "\(i)")]) }
        try await admin.send("XADD", keys.stream(stream, partition: 0), "*", "no_channel_here", "x")

        var metrics = ""
        try await waitUntil(timeout: .seconds(120)) {
            metrics = try await HTTPGet.get(base + "/metrics").body
            return WorkerOperatorSurfaceTests.value(metrics, "sg_commits_total{outcome=\"applied\"}") == 3
                && WorkerOperatorSurfaceTests.value(metrics, "sg_group_pending{stream=\"\(keys.stream(stream, channel: "scrape"))\"}") == 0
        }
        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
        return metrics
    }

    /// Every sample's metric name in Prometheus text (histograms give `_bucket`, `_sum` and `_count`).
    static func sampleNames(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line -> String? in
            guard !line.hasPrefix("#"), let name = line.split(whereSeparator: { $0 == "{" || $0 == " " }).first else { return nil }
            return String(name)
        })
    }
}

/// Docker/prometheus/alerts.yml and the Grafana dashboard against what a worker really exports.
@Suite(.serialized) struct ShippedMonitoringTests {
    /// Metric names (`sg_…`, `process_…`) that a file's queries use.
    static func metricNames(in path: String) throws -> Set<String> {
        let text = try String(contentsOf: WorkerScrape.repository.appendingPathComponent(path), encoding: .utf8)
        return Set(text.matches(of: /\b(?:sg|process)_[a-z0-9_]+/).map { String($0.output) })
    }

    @Test func everyMetricTheAlertsAndTheDashboardUseIsInARealScrape() async throws {
        let alerts = try Self.metricNames(in: "Docker/prometheus/alerts.yml")
        let dashboard = try Self.metricNames(in: "Docker/grafana/dashboards/stream-consumer.json")
        #expect(alerts.count >= 6 && dashboard.count >= 20, "alerts: \(alerts.sorted()), dashboard: \(dashboard.sorted())")

        let exported = WorkerScrape.sampleNames(try await WorkerScrape.take())
        for name in alerts.sorted() {
            #expect(exported.contains(name), "alerts.yml uses \(name), which the worker does not export")
        }
        for name in dashboard.sorted() {
            #expect(exported.contains(name), "the dashboard uses \(name), which the worker does not export")
        }
    }

    @Test func theDashboardIsValidJSONWhosePanelsAllHaveQueries() throws {
        let data = try Data(contentsOf: WorkerScrape.repository.appendingPathComponent("Docker/grafana/dashboards/stream-consumer.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["uid"] as? String == "stream-consumer")
        let panels = try #require(dashboard["panels"] as? [[String: Any]]).filter { $0["type"] as? String != "row" }
        #expect(panels.count >= 15)
        for panel in panels {
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty && targets.allSatisfy { ($0["expr"] as? String)?.isEmpty == false },
                    "panel \(panel["title"] ?? "?") has no query")
        }
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(Set(ids).count == ids.count, "panel ids repeat")
    }
}
