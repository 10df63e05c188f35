import Synchronization
import Foundation
import Logging
import RedisClient
import Testing

/// The shared server that Scripts/test.sh starts. Tests fail (never skip) without it.
public enum TestRedis {
    public static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SG_TEST_REDIS_URL"], !url.isEmpty else {
            Issue.record("SG_TEST_REDIS_URL is not set: run the suite through Scripts/test.sh, which starts a private Redis")
            throw TestSetupError.noRedis
        }
        return url
    }

    public static func client(poolSize: Int = 2, commandTimeout: Duration = .seconds(10)) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url())
        configuration.poolSize = poolSize
        configuration.commandTimeout = commandTimeout
        return RedisClient(configuration: configuration, logger: Logger(label: "test"))
    }

    /// A key prefix no other test uses.
    public static func uniqueKey(_ name: String = #function) -> String {
        "test:\(name.prefix(while: { $0 != "(" })):\(UUID().uuidString)"
    }
}

public enum TestSetupError: Error { case noRedis, noPython, serverDidNotStart(String) }

/// A throwaway redis-server on a unix socket, for tests that disturb the whole server
/// (CLIENT PAUSE, SCRIPT FLUSH, passwords, ACLs).
public final class PrivateRedisServer: Sendable {
    public let directory: URL
    public let socketPath: String
    private let arguments: [String]
    private let process: Mutex<ChildProcess?>

    public init(arguments: [String] = []) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.socketPath = directory.appendingPathComponent("redis.sock").path
        self.arguments = [
            "--port", "0", "--unixsocket", socketPath, "--unixsocketperm", "700",
            "--dir", directory.path, "--save", "", "--appendonly", "no",
            "--logfile", directory.appendingPathComponent("redis.log").path,
        ] + arguments
        self.process = Mutex(nil)
        try await start()
    }

    private func start(waitForData: Bool = true) async throws {
        try? FileManager.default.removeItem(atPath: socketPath)
        // Redis listens before it has loaded its data (answering LOADING meanwhile) and logs
        // "Ready to accept connections" once loaded: wait for this start's line.
        let log = directory.appendingPathComponent("redis.log")
        let readyBefore = Self.readyLines(log)
        let child = try ChildProcess(ProcessInfo.processInfo.environment["SG_REDIS_SERVER"] ?? "/usr/bin/redis-server", arguments)
        process.withLock { $0 = child }
        for _ in 0..<400 {
            if Self.accepts(socketPath), !waitForData || Self.readyLines(log) > readyBefore { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        child.killNow()
        throw TestSetupError.serverDidNotStart((try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    public var url: String { "unix://\(socketPath)" }

    private static func readyLines(_ log: URL) -> Int {
        // "Ready to accept connections" with a TCP port, "… now ready to accept connections at <socket>" without.
        ((try? String(contentsOf: log, encoding: .utf8)) ?? "").lowercased().components(separatedBy: "ready to accept connections").count - 1
    }

    /// Whether the server listens on `path`. The socket file appears at bind(), a moment before
    /// listen(), so its existence alone lets a fast first client be refused.
    private static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (i, byte) in bytes.enumerated() { buffer[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    public func configuration(password: String? = nil, username: String? = nil, commandTimeout: Duration = .seconds(10)) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url)
        configuration.password = password
        configuration.username = username
        configuration.commandTimeout = commandTimeout
        configuration.poolSize = 1
        return configuration
    }

    /// Crashes the server (SIGKILL: no shutdown save or flush) and starts it again on the same
    /// socket and directory, so it reloads whatever it had persisted.
    /// - Parameter waitForData: return only once the data is loaded; false returns as soon as the
    ///   server accepts connections, while it may still answer LOADING.
    public func crashAndRestart(waitForData: Bool = true) async throws {
        await crash()
        try await restart(waitForData: waitForData)
    }

    /// Kills the server (SIGKILL) and waits until it is gone; ``restart(waitForData:)`` brings it back.
    public func crash() async {
        let old = process.withLock { process in
            defer { process = nil }
            return process
        }
        old?.killNow()
        _ = await old?.wait(timeout: .seconds(10))
    }

    /// Starts the server again on the same socket and directory after ``crash()``.
    public func restart(waitForData: Bool = true) async throws {
        try await start(waitForData: waitForData)
    }

    /// Kills the server at once and removes its directory.
    public func stop() {
        process.withLock { $0?.killNow() }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Polls `condition` until it holds; fails the test after a generous bound.
public func waitUntil(
    timeout: Duration = .seconds(30),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("condition did not hold within \(timeout)", sourceLocation: sourceLocation)
    throw WaitTimeout()
}

public struct WaitTimeout: Error {}

/// The directory holding the built products (sgctl, stream-consumer) next to the test bundle.
public func builtProductPath(_ name: String) -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent(name).path
}

/// Runs `sgctl health` with `arguments` (60 s at most), its output logged in `directory`.
public func runHealthProbe(_ arguments: [String], environment: [String: String] = [:], logIn directory: URL) async throws -> (status: Int32?, output: String) {
    let log = directory.appendingPathComponent("probe-\(UUID().uuidString.prefix(8)).log").path
    let probe = try ChildProcess(builtProductPath("sgctl"), ["health"] + arguments, stdout: log, environment: environment)
    let status = await probe.wait(timeout: .seconds(60))
    if status == nil { probe.killNow() }
    return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
}

/// The Python that Scripts/test.sh prepares in a virtual environment with the packages the tests
/// decode with (prometheus_client, opentelemetry-proto). Tests fail (never skip) without it.
public enum TestPython {
    /// The repository's Tests/Python folder, where the helper scripts are.
    public static let scripts = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Python")

    public static func interpreter() throws -> String {
        guard let path = ProcessInfo.processInfo.environment["SG_TEST_PYTHON"], !path.isEmpty else {
            Issue.record("SG_TEST_PYTHON is not set: run the suite through Scripts/test.sh, which makes its virtual environment")
            throw TestSetupError.noPython
        }
        return path
    }

    /// Runs `Tests/Python/<script>` with `arguments` and returns its exit status and output (stdout and stderr).
    public static func run(_ script: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> (status: Int32?, output: String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sg-py-\(UUID().uuidString.prefix(8)).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try ChildProcess(try interpreter(), [scripts.appendingPathComponent(script).path] + arguments, stdout: output)
        let status = await child.wait(timeout: timeout)
        if status == nil { child.killNow() }
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}
