import Foundation
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// The Redis password never reaches the output, even at debug level, whichever way it is given.
@Suite(.serialized) struct PasswordLoggingTests {
    enum PasswordSource: String, CaseIterable {
        /// `SG_REDIS_PASSWORD`, with the URL in a flag.
        case passwordVariable
        /// `redis://:password@host:port` in `SG_REDIS_URL`.
        case urlVariable
        /// `--redis-password-file`.
        case passwordFile
    }

    static let password = "Pw7x9QzK3mVt2L8s"

    @Test(arguments: PasswordSource.allCases, ["json", "text"])
    func thePasswordAppearsInNoLogLineAtDebugLevel(source: PasswordSource, format: String) async throws {
        let (server, port) = try await PrivateRedisServer.onFreeLoopbackPort { port in
            ["--port", "\(port)", "--bind", "127.0.0.1", "--requirepass", Self.password]
        }
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration(password: Self.password))
        defer { admin.close() }
        let keys = WorkerKeys(prefix: "pw")
        let stream = "pw:in"
        let directory = server.directory.deletingLastPathComponent().appendingPathComponent("sg-pw-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var arguments = [
            "--stream", stream, "--group", "g", "--consumer", "pw-1", "--key-prefix", keys.prefix, "--block-ms", "200",
            "--log-level", "debug", "--log-format", format, "--metrics-port", "0", "--metrics-host", "127.0.0.1",
        ]
        var environment: [String: String] = [:]
        switch source {
        case .passwordVariable:
            arguments += ["--redis-url", "redis://127.0.0.1:\(port)"]
            environment["SG_REDIS_PASSWORD"] = Self.password
        case .urlVariable:
            environment["SG_REDIS_URL"] = "redis://:\(Self.password)@127.0.0.1:\(port)"
        case .passwordFile:
            let file = directory.appendingPathComponent("password").path
            try (Self.password + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            arguments += ["--redis-url", "redis://127.0.0.1:\(port)", "--redis-password-file", file]
        }
        let worker = try WorkerProcess(arguments, environment: environment, logPath: directory.appendingPathComponent("worker.log").path)
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"

        let producer = Producer(client: admin, keys: keys)
        for i in 0..<10 { try await producer.send(stream: stream, channel: "ch\(i % 3)", fields: [StreamField("n", "\(i)")]) }
        try await admin.send("XADD", stream, "*", "seq", "not-a-number", "channel_id", "bad")
        try await waitUntil(timeout: .seconds(120)) {
            var applied: Int64 = 0
            for c in 0..<3 { applied += try await admin.send("HGET", keys.state(channel: "ch\(c)"), "count").int ?? 0 }
            let pending = try await admin.send("XPENDING", stream, "g").array?.first?.int ?? -1
            return applied == 10 && pending == 0
        }
        let pages = [try await HTTPGet.get(base + "/metrics").body, try await HTTPGet.get(base + "/health/ready").body]
        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0)

        let log = worker.log
        // It really connected, processed, and logged at debug level.
        #expect(log.contains("Worker started"))
        #expect(log.contains("Redis connected"), "no debug line from the Redis client")
        #expect(log.contains("Dead-lettered entry"))
        #expect(log.split(separator: "\n").count > 5)
        if format == "json" {
            for line in log.split(separator: "\n") {
                #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not JSON: \(line)")
            }
        }
        #expect(!log.contains(Self.password), "the password is in the log")
        for page in pages { #expect(!page.contains(Self.password)) }
    }
}
