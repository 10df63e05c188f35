import Foundation
import Logging
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// Real stream-consumer processes with `--metrics-port`, against a private Redis that the test can take away.
@Suite(.serialized) struct WorkerOperatorSurfaceTests {
    /// Sum of a metric's samples whose line starts with `prefix` (name plus any labels), from Prometheus text.
    static func value(_ text: String, _ prefix: String) -> Double? {
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.hasPrefix(prefix) }
        guard !samples.isEmpty else { return nil }
        return samples.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test func healthAndMetricsFollowTheWorkerAndRedis() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration())
        defer { admin.close() }
        let keys = WorkerKeys(prefix: "ops")
        let stream = "ops:in"
        let directory = server.directory.deletingLastPathComponent().appendingPathComponent("sg-ops-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let worker = try WorkerProcess([
            "--redis-url", server.url, "--stream", stream, "--group", "g", "--consumer", "ops-1", "--key-prefix", keys.prefix,
            "--block-ms", "200", "--metrics-port", "0", "--metrics-host", "127.0.0.1",
        ], logPath: directory.appendingPathComponent("worker.log").path)
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"

        #expect(try await HTTPGet.get(base + "/health/live").status == 200)
        try await waitUntil(timeout: .seconds(60)) { try await HTTPGet.get(base + "/health/ready").status == 200 }

        // Channel ids with colons: none of them may reach a label.
        let producer = Producer(client: admin, keys: keys)
        let channels = (0..<5).map { "room:\($0):secret-channel" }
        for i in 0..<10 {
            for channel in channels { try await producer.send(stream: stream, channel: channel, fields: [StreamField("n", "\(i)")]) }
        }
        try await admin.send("XADD", stream, "*", "no_channel_here", "x")
        func applied() async throws -> Int64 {
            var total: Int64 = 0
            for channel in channels { total += try await admin.send("HGET", keys.state(channel: channel), "count").int ?? 0 }
            return total
        }
        func pending() async throws -> Int64 { try await admin.send("XPENDING", stream, "g").array?.first?.int ?? -1 }
        try await waitUntil(timeout: .seconds(120)) {
            let done = try await applied()
            let open = try await pending()
            return done == 50 && open == 0
        }

        // Drop every worker connection: each reconnects on its next command.
        let killed = try await admin.send("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal").int ?? 0
        #expect(killed >= 1)
        for channel in channels { try await producer.send(stream: stream, channel: channel, fields: [StreamField("n", "after")]) }
        try await waitUntil(timeout: .seconds(120)) {
            let done = try await applied()
            let open = try await pending()
            return done == 55 && open == 0
        }

        var metrics = ""
        // The group sampler runs every 2 s: its gauges show the drained group; the reconnects are counted.
        try await waitUntil(timeout: .seconds(60)) {
            metrics = try await HTTPGet.get(base + "/metrics").body
            return Self.value(metrics, "sg_group_pending{stream=\"\(stream)\"}") == 0
                && Self.value(metrics, "sg_group_lag{stream=\"\(stream)\"}") == 0
                && Self.value(metrics, "sg_redis_reconnects_total") ?? 0 >= 1
        }
        #expect(Self.value(metrics, "sg_commits_total{outcome=\"applied\"}") == 55)
        #expect(Self.value(metrics, "sg_end_to_end_seconds_count") == 55)
        #expect(Self.value(metrics, "sg_dead_lettered_total{reason=\"missing_channel\"}") == 1)
        // One claim per run of a channel's queued messages: each of the 5 channels was claimed at
        // least once for the first 50 messages and once more after the reconnect, at most once a message.
        let claims = Self.value(metrics, "sg_lock_acquire_wait_seconds_count{prefix=\"ops:lock:channel\"}") ?? 0
        #expect(claims >= 10, "claims \(claims)")
        #expect(Self.value(metrics, "sg_lock_hold_seconds_count{prefix=\"ops:lock:channel\"}") ?? 0 >= 10)
        for name in [
            "sg_commits_total{outcome=\"duplicate\"}", "sg_commits_total{outcome=\"stale\"}", "sg_commits_total{outcome=\"lost\"}",
            "sg_handler_errors_total", "sg_retries_total", "sg_lock_renewals_total", "sg_lock_lease_losses_total",
            "sg_reclaimed_total", "sg_in_flight_channels", "sg_in_flight_messages", "sg_redis_connect_failures_total",
            "sg_end_to_end_seconds_bucket", "sg_lock_acquire_wait_seconds_bucket", "sg_lock_hold_seconds_bucket",
        ] {
            #expect(Self.value(metrics, name) != nil, "/metrics lacks \(name)")
        }
        #expect(!metrics.contains("channel="), "a metric has a per-channel label")
        #expect(!metrics.contains("secret-channel"), "a channel id reached /metrics")

        // Redis goes away: readiness turns 503 with the reason, liveness stays 200.
        server.stop()
        var ready = HTTPGet.Reply(status: 0, body: "")
        try await waitUntil(timeout: .seconds(60)) {
            ready = try await HTTPGet.get(base + "/health/ready")
            return ready.status == 503
        }
        #expect(ready.body.hasPrefix("not ready: Redis"), "reason: \(ready.body)")
        #expect(try await HTTPGet.get(base + "/health/live").status == 200)

        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
    }

    /// A worker of group `g` on `ops:in`, serving on a free port, logging JSON into a directory of its own.
    static func groupWorker(_ server: PrivateRedisServer) throws -> (WorkerProcess, URL) {
        let directory = server.directory.deletingLastPathComponent().appendingPathComponent("sg-ops-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let worker = try WorkerProcess([
            "--redis-url", server.url, "--stream", "ops:in", "--group", "g", "--consumer", "ops-1", "--key-prefix", "ops",
            "--block-ms", "200", "--metrics-port", "0", "--metrics-host", "127.0.0.1", "--log-format", "json",
        ], logPath: directory.appendingPathComponent("worker.log").path)
        return (worker, directory)
    }

    @Test func readinessNamesAMissingGroup() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration())
        defer { admin.close() }
        let (worker, _) = try Self.groupWorker(server)
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"
        try await waitUntil(timeout: .seconds(60)) { try await HTTPGet.get(base + "/health/ready").status == 200 }

        try await admin.send("XGROUP", "DESTROY", "ops:in", "g")
        var ready = HTTPGet.Reply(status: 0, body: "")
        try await waitUntil(timeout: .seconds(60)) {
            ready = try await HTTPGet.get(base + "/health/ready")
            return ready.status == 503
        }
        #expect(ready.body.contains("consumer group 'g' does not exist on ops:in"), "reason: \(ready.body)")

        // The operator recreates it: ready again.
        try await admin.send("XGROUP", "CREATE", "ops:in", "g", "0")
        try await waitUntil(timeout: .seconds(60)) { try await HTTPGet.get(base + "/health/ready").status == 200 }

        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
    }

    /// `sgctl health`, the image's health check (it has no curl): exit 0 exactly while the
    /// endpoint answers 200, asking the port SG_METRICS_PORT names.
    @Test func sgctlHealthFollowsTheWorkersReadiness() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration())
        defer { admin.close() }
        let (worker, directory) = try Self.groupWorker(server)
        let port = try await worker.metricsPort()
        // As in the image: the port from the worker's variable, the wildcard host asked on loopback.
        let environment = ["SG_METRICS_PORT": "\(port)", "SG_METRICS_HOST": "0.0.0.0"]
        func health(_ arguments: [String] = []) async throws -> (status: Int32?, output: String) {
            let log = directory.appendingPathComponent("health-\(UUID().uuidString.prefix(8)).log").path
            let probe = try ChildProcess(builtProductPath("sgctl"), ["health"] + arguments, stdout: log, environment: environment)
            let status = await probe.wait(timeout: .seconds(60))
            if status == nil { probe.killNow() }
            return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }

        try await waitUntil(timeout: .seconds(60)) { try await health().status == 0 }

        try await admin.send("XGROUP", "DESTROY", "ops:in", "g")
        try await waitUntil(timeout: .seconds(60)) { try await HTTPGet.get("http://127.0.0.1:\(port)/health/ready").status == 503 }
        let notReady = try await health()
        #expect(notReady.status == 1)
        #expect(notReady.output.contains("http://127.0.0.1:\(port)/health/ready: HTTP 503"), "\(notReady.output)")
        #expect(try await health(["--live"]).status == 0)

        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
        let gone = try await health(["--live"])
        #expect(gone.status == 1)
        #expect(gone.output.contains("http://127.0.0.1:\(port)/health/live"), "\(gone.output)")
    }

    @Test func aTakenMetricsPortStopsTheWorkerWithAnErrorNamingTheOption() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let taken = try TakenPort()
        let directory = server.directory.deletingLastPathComponent().appendingPathComponent("sg-ops-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let worker = try WorkerProcess([
            "--redis-url", server.url, "--stream", "ops:in", "--group", "g", "--consumer", "ops-1",
            "--metrics-port", "\(taken.port)", "--metrics-host", "127.0.0.1",
        ], logPath: directory.appendingPathComponent("worker.log").path)
        let status = await worker.process.wait(timeout: .seconds(60))
        #expect(status != nil && status != 0)
        #expect(worker.log.contains("metrics-port: cannot listen on 127.0.0.1:\(taken.port)"), "\(worker.log)")
    }
}
