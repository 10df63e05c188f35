import Logging
import Metrics
import OperatorHTTP
import Prometheus
import ServiceLifecycle
import Synchronization
import Testing

/// The HTTP server alone, in-process, with a readiness the test controls.
@Suite struct OperatorServerTests {
    final class Readiness: Sendable {
        let value = Mutex(ProbeResult.unavailable(reason: "starting: consumer group 'g' not yet created"))
    }

    /// Runs the server on a free loopback port, calls `body` with its base URL, then shuts it down gracefully.
    func withServer(
        registry: PrometheusCollectorRegistry, readiness: Readiness, _ body: (String) async throws -> Void
    ) async throws {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let server = OperatorServer(
            host: "127.0.0.1", port: 0, registry: registry, readiness: { readiness.value.withLock { $0 } },
            logger: Logger(label: "test.http"), onListening: { portSink.yield($0) })
        let group = ServiceGroup(services: [server], logger: Logger(label: "test.group"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body("http://127.0.0.1:\(port)")
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func livenessIsAlwaysOK() async throws {
        try await withServer(registry: PrometheusCollectorRegistry(), readiness: Readiness()) { base in
            let reply = try await HTTPGet.get(base + "/health/live")
            #expect(reply.status == 200)
        }
    }

    @Test func readinessIs503WithTheReasonUntilReadyThen200() async throws {
        let readiness = Readiness()
        try await withServer(registry: PrometheusCollectorRegistry(), readiness: readiness) { base in
            let before = try await HTTPGet.get(base + "/health/ready")
            #expect(before.status == 503)
            #expect(before.body.contains("consumer group 'g' not yet created"))
            readiness.value.withLock { $0 = .ok }
            #expect(try await HTTPGet.get(base + "/health/ready").status == 200)
            readiness.value.withLock { $0 = .unavailable(reason: "Redis read failed: connection refused") }
            let after = try await HTTPGet.get(base + "/health/ready")
            #expect(after.status == 503 && after.body.contains("connection refused"))
        }
    }

    @Test func metricsAreThePrometheusTextOfTheRegistryWithTheChosenBuckets() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = MetricsBackend.factory(registry: registry)
        factory.makeCounter(label: "sg_commits_total", dimensions: [("outcome", "applied")]).increment(by: 3)
        factory.makeTimer(label: "sg_lock_acquire_wait_seconds", dimensions: [("prefix", "sg:lock:channel")])
            .recordNanoseconds(700_000)
        try await withServer(registry: registry, readiness: Readiness()) { base in
            let reply = try await HTTPGet.get(base + "/metrics")
            #expect(reply.status == 200)
            #expect(reply.body.contains("sg_commits_total{outcome=\"applied\"} 3"))
            // 0.7 ms lands in the 1 ms bucket, not in the 0.5 ms one: the lock buckets start below a millisecond.
            #expect(reply.body.contains("sg_lock_acquire_wait_seconds_bucket{prefix=\"sg:lock:channel\",le=\"0.0005\"} 0"))
            #expect(reply.body.contains("sg_lock_acquire_wait_seconds_bucket{prefix=\"sg:lock:channel\",le=\"0.001\"} 1"))
        }
    }

    @Test func anUnknownPathIs404() async throws {
        try await withServer(registry: PrometheusCollectorRegistry(), readiness: Readiness()) { base in
            let reply = try await HTTPGet.get(base + "/nope")
            #expect(reply.status == 404)
        }
    }
}
