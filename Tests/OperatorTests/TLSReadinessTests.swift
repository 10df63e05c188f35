import Foundation
import TestSupport
import Testing

/// stream-consumer processes against a TLS Redis whose certificate they must refuse.
@Suite struct TLSReadinessTests {
    func logPath(_ server: PrivateTLSRedisServer) -> String {
        server.server.directory.appendingPathComponent("worker-\(UUID().uuidString.prefix(8)).log").path
    }

    @Test func readinessSaysTheRedisCertificateHasExpired() async throws {
        let server = try await PrivateTLSRedisServer(certificate: "expired")
        defer { server.stop() }
        let worker = try WorkerProcess([
            "--redis-url", server.url, "--tls-ca-file", try TestTLS.file("ca.crt"),
            "--stream", "tls:in", "--group", "g", "--consumer", "tls-1", "--key-prefix", "tls",
            "--metrics-port", "0", "--metrics-host", "127.0.0.1",
        ], logPath: logPath(server))
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"
        var ready = HTTPGet.Reply(status: 0, body: "")
        try await waitUntil(timeout: .seconds(60)) {
            ready = try await HTTPGet.get(base + "/health/ready")
            return ready.body.contains("certificate")
        }
        #expect(ready.status == 503)
        #expect(ready.body.contains("the server's certificate has expired"), "reason: \(ready.body)")
        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
    }

    @Test func skippingVerificationConnectsAnywayAndWarnsAtStart() async throws {
        let server = try await PrivateTLSRedisServer(certificate: "expired")
        defer { server.stop() }
        let worker = try WorkerProcess([
            "--redis-url", server.url, "--tls-insecure-skip-verify",
            "--stream", "tls:in", "--group", "g", "--consumer", "tls-2", "--key-prefix", "tls",
            "--metrics-port", "0", "--metrics-host", "127.0.0.1",
        ], logPath: logPath(server))
        let base = "http://127.0.0.1:\(try await worker.metricsPort())"
        try await waitUntil(timeout: .seconds(60)) { try await HTTPGet.get(base + "/health/ready").status == 200 }
        #expect(worker.log.contains("TLS certificate verification is off"), "\(worker.log)")
        worker.process.signal(SIGTERM)
        #expect(await worker.process.wait(timeout: .seconds(60)) == 0, "\(worker.log)")
    }
}
