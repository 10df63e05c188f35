import Chaos
import Foundation

/// A redis-server the chaos run owns: loopback TCP on a free port, AOF with fsync on every write,
/// so a `restart` fault loses nothing that was acknowledged. Same port and directory across restarts.
actor ChaosRedisServer {
    let executable: String
    let directory: URL
    let port: Int
    private var process: ChildProcess?

    nonisolated var url: String { "redis://127.0.0.1:\(port)" }

    init(executable: String) throws {
        self.executable = executable
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-chaos-redis-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        port = try Self.freePort()
    }

    func start() async throws {
        let arguments = ["--bind", "127.0.0.1", "--port", String(port), "--dir", directory.path, "--save", "",
                         "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                         "--logfile", directory.appendingPathComponent("redis.log").path]
        let process = try ChildProcess(executable, arguments)
        self.process = process
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if Self.accepts(port: port) { return }
            if await process.wait(timeout: .zero) != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.killNow()
        let log = (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
        throw ChaosError.redisDidNotStart(executable: executable, log: String(log.suffix(2000)))
    }

    /// SIGTERM (Redis flushes the AOF and exits), then start again on the same port and directory.
    func restart() async throws {
        if let process {
            process.signal(SIGTERM)
            if await process.wait(timeout: .seconds(20)) == nil { process.killNow() }
        }
        try await start()
    }

    func stop(removeFiles: Bool) async {
        if let process {
            process.signal(SIGTERM)
            if await process.wait(timeout: .seconds(10)) == nil { process.killNow() }
        }
        process = nil
        if removeFiles { try? FileManager.default.removeItem(at: directory) }
    }

    /// A loopback port nothing listens on (the kernel's pick for an ephemeral bind).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ChaosError.noFreePort(errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw ChaosError.noFreePort(errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on the loopback port (a local connect returns at once).
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Why a chaos run could not be carried out (as opposed to invariants that failed).
enum ChaosError: Error, CustomStringConvertible {
    case redisDidNotStart(executable: String, log: String)
    case noFreePort(Int32)
    case restartNeedsOwnRedis
    case invalidOption(String)
    case needsCluster(String)

    var description: String {
        switch self {
        case .redisDidNotStart(let executable, let log): return "\(executable) did not start; its log ends with:\n\(log)"
        case .noFreePort(let code): return "could not find a free loopback port (errno \(code))"
        case .restartNeedsOwnRedis: return "the restart fault restarts a Redis that chaos started itself: omit --redis-url to use it"
        case .invalidOption(let text): return text
        case .needsCluster(let fault): return "the \(fault) fault needs a Redis Cluster: pass --redis-url redis+cluster://host:port,… (Scripts/cluster.sh starts a local one)"
        }
    }
}
