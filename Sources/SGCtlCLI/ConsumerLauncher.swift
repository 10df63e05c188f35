import Chaos
import Foundation

/// Starts `stream-consumer` processes for one deployment (stream, group, key prefix), as
/// `bench worker` and `chaos` need them. The binary is the one built next to this `sgctl`.
struct ConsumerLauncher: Sendable {
    var executable = ConsumerLauncher.siblingExecutable
    var redisURL: String
    var stream: String
    var group: String
    var keyPrefix: String
    var partitions = 1
    /// More `stream-consumer` flags (`--lock-ttl 1`, `--work-ms 5`).
    var options: [String] = []
    /// `SG_AUDIT_STREAM` and friends.
    var environment: [String: String] = [:]
    /// Each consumer's stdout and stderr go to `<directory>/<name>.log`; nil discards them.
    var logDirectory: URL?

    /// `stream-consumer` beside this sgctl. From /proc/self/exe, since argv[0] is a bare name when
    /// sgctl was found on PATH.
    static var siblingExecutable: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("stream-consumer").path
    }

    func start(_ name: String) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LauncherError.missingExecutable(executable)
        }
        let arguments = ["--redis-url", redisURL, "--stream", stream, "--group", group, "--consumer", name,
                         "--key-prefix", keyPrefix, "--partitions", String(partitions)] + options
        return try ChildProcess(executable, arguments, stdout: logDirectory?.appendingPathComponent("\(name).log").path,
                                environment: environment)
    }

    enum LauncherError: Error, CustomStringConvertible {
        case missingExecutable(String)

        var description: String {
            switch self {
            case .missingExecutable(let path): return "no stream-consumer executable at \(path) (build it, or pass --stream-consumer)"
            }
        }
    }
}
