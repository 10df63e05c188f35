import Foundation
import TestSupport
import Testing

/// `sgctl health` as the image's health check runs it, against real stream-consumer processes: it
/// asks the port the worker itself resolved, however that port was set.
@Suite struct HealthProbeTests {
    @Test func theProbeAsksThePortTheWorkerResolvedFromItsYAMLOrItsFlags() async throws {
        let redis = try TestRedis.url()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-probe-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let prefix = TestRedis.uniqueKey("probe")
        // Two free ports for the workers to take, and one held bound without listening, so that
        // nothing answers on it while the test runs.
        let (fromYAML, fromFlag) = try { () throws -> (Int, Int) in
            let ports = try (0..<2).map { _ in try TakenPort() }
            return (ports[0].port, ports[1].port)
        }()
        let unanswered = try TakenPort(listening: false)
        let nobody = unanswered.port
        func worker(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> WorkerProcess {
            try WorkerProcess(["--redis-url", redis, "--stream", prefix + ":in", "--group", "g", "--consumer", name,
                               "--key-prefix", prefix, "--block-ms", "200"] + arguments,
                              environment: environment, logPath: directory.appendingPathComponent("\(name).log").path)
        }
        func probe(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32?, output: String) {
            try await runHealthProbe(arguments, environment: environment, logIn: directory)
        }

        let yaml = directory.appendingPathComponent("worker.yaml").path
        try "metrics-port: \(fromYAML)\nmetrics-host: 127.0.0.1\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        let configured = try worker("by-yaml", ["--config", yaml])
        let flagged = try worker("by-flag", ["--metrics-port", String(fromFlag)], environment: ["SG_METRICS_PORT": String(nobody)])
        #expect(try await configured.metricsPort() == fromYAML)
        #expect(try await flagged.metricsPort() == fromFlag)

        for worker in [configured, flagged] {
            // Ready once the group exists; this command's own SG_METRICS_PORT does not matter.
            try await waitUntil(timeout: .seconds(60)) {
                try await probe(["--pid", String(worker.process.pid)], environment: ["SG_METRICS_PORT": String(nobody)]).status == 0
            }
        }
        // Without the worker's process, the probe has only its own environment to go by.
        let fromEnvironment = try await probe([], environment: ["SG_METRICS_PORT": String(nobody)])
        #expect(fromEnvironment.status == 1)
        #expect(fromEnvironment.output.contains(":\(nobody)/health/ready"), "\(fromEnvironment.output)")
        let notAWorker = try await probe(["--pid", String(getpid())])
        #expect(notAWorker.status == 1)
        #expect(notAWorker.output.contains("not stream-consumer"), "\(notAWorker.output)")
        withExtendedLifetime(unanswered) {}
    }
}
