import Foundation
import Logging
import RedisClient
import Testing

/// The TLS server and throw-away certificates that Scripts/test.sh makes (Scripts/lib.sh
/// `make_test_certs`, `start_tls_redis`). Tests fail (never skip) without them.
public enum TestTLS {
    /// `rediss://127.0.0.1:PORT` of the shared TLS-only server; it presents `server.crt` and accepts,
    /// but does not require, client certificates from `ca.crt`.
    public static func url() throws -> String {
        try environment("SG_TEST_TLS_REDIS_URL")
    }

    /// A file of `make_test_certs`: `ca.crt`, `other-ca.crt`, `server.crt`, `expired.crt`,
    /// `wronghost.crt`, `client.crt`, `other-client.crt` and their `.key`s.
    public static func file(_ name: String) throws -> String {
        let path = URL(fileURLWithPath: try environment("SG_TEST_TLS_DIR")).appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("\(path) is missing: Scripts/lib.sh make_test_certs should have made it")
            throw TestSetupError.noRedis
        }
        return path
    }

    /// Verification against the test CA, optionally with a client certificate (`client`, `other-client`).
    public static func settings(ca: String = "ca.crt", clientCertificate: String? = nil, serverName: String? = nil) throws -> RedisTLSConfiguration {
        RedisTLSConfiguration(
            caFile: try file(ca),
            certificateFile: try clientCertificate.map { try file("\($0).crt") },
            keyFile: try clientCertificate.map { try file("\($0).key") },
            serverName: serverName)
    }

    public static func configuration(
        url: String? = nil, tls: RedisTLSConfiguration? = nil, poolSize: Int = 2, commandTimeout: Duration = .seconds(10)
    ) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url ?? Self.url())
        configuration.tls = try tls ?? settings()
        configuration.poolSize = poolSize
        configuration.commandTimeout = commandTimeout
        // Refused handshakes are retried; keep the retries quick so failing tests fail fast.
        configuration.backoff = ReconnectBackoff(base: .milliseconds(20), cap: .milliseconds(200))
        return configuration
    }

    public static func client(tls: RedisTLSConfiguration? = nil, poolSize: Int = 2) throws -> RedisClient {
        RedisClient(configuration: try configuration(tls: tls, poolSize: poolSize), logger: Logger(label: "test-tls"))
    }

    /// stream-consumer / sgctl flags that trust the test CA.
    public static func flags() throws -> [String] {
        ["--redis-url", try url(), "--tls-ca-file", try file("ca.crt")]
    }

    private static func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            Issue.record("\(name) is not set: run the suite through Scripts/test.sh, which starts a private TLS Redis")
            throw TestSetupError.noRedis
        }
        return value
    }
}

/// A throw-away redis-server that speaks only TLS on a loopback port, presenting one of the test
/// certificates (`expired`, `wronghost`, …); for refusals, and for servers a test may disturb.
public struct PrivateTLSRedisServer: Sendable {
    public let server: PrivateRedisServer
    public let port: Int

    /// - Parameter requireClientCertificate: `--tls-auth-clients yes` (mutual TLS) instead of optional.
    public init(certificate: String = "server", requireClientCertificate: Bool = false) async throws {
        let files = [try TestTLS.file("\(certificate).crt"), try TestTLS.file("\(certificate).key"), try TestTLS.file("ca.crt")]
        (server, port) = try await PrivateRedisServer.onFreeLoopbackPort { port in [
            "--tls-port", "\(port)", "--bind", "127.0.0.1",
            "--tls-cert-file", files[0], "--tls-key-file", files[1], "--tls-ca-cert-file", files[2],
            "--tls-auth-clients", requireClientCertificate ? "yes" : "optional",
        ] }
    }

    public var url: String { "rediss://127.0.0.1:\(port)" }

    public func stop() { server.stop() }
}

extension PrivateRedisServer {
    /// A server listening on a free loopback port as well as its socket. The port is found by
    /// binding port 0 and given to redis-server afterwards, so another process (a concurrent
    /// test, or a client's outgoing connection) may take it meanwhile: then it tries another.
    public static func onFreeLoopbackPort(_ arguments: (Int) -> [String]) async throws -> (PrivateRedisServer, Int) {
        var attempt = 0
        while true {
            let port = try freeLoopbackPort()
            do {
                return (try await PrivateRedisServer(arguments: arguments(port)), port)
            } catch TestSetupError.serverDidNotStart(let log) where log.contains("Address already in use") && attempt < 5 {
                attempt += 1
            }
        }
    }
}

/// A free TCP port on 127.0.0.1, found by binding port 0 (another process could take it before
/// it is used; only for servers that cannot report the port they bound, such as redis-server).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw POSIXError(.EIO) }
    return Int(UInt16(bigEndian: address.sin_port))
}
