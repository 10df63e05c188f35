import ArgumentParser
import BuildInfo
import Foundation
import Logging
import RedisClient
import StreamTools
import StreamWorker

/// The operator tool's root command: the `sgctl` and `stargazer` executables run it.
public struct SGCtl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sgctl",
        abstract: "Operator tool for the stream-consumer worker pool.",
        version: BuildInfo.versionLine,
        subcommands: [ProduceCommand.self, VerifyCommand.self, ReplayCommand.self, InspectCommand.self, DLQCommand.self,
                      ChaosCommand.self, Bench.self, LockCommand.self, FunctionsCommand.self,
                      HealthCommand.self]
    )

    public init() {}
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (release builds give meaningful numbers).",
        subcommands: [BenchClient.self, BenchLock.self, BenchWorker.self]
    )
}

/// Options every subcommand that talks to Redis shares, resolved as the worker resolves them
/// (``ToolConnection``): flags, then `SG_REDIS_URL`, `SG_REDIS_PASSWORD`, `SG_REDIS_USER`.
struct RedisOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Redis URL: redis://[user[:password]@]host[:port][/db], rediss://…, unix:///path?db=N, or redis+cluster://host:port[,host:port…] (default: $SG_REDIS_URL, else redis://127.0.0.1:6379).",
        discussion: "A password here is visible in ps and draws a warning; prefer SG_REDIS_URL, SG_REDIS_PASSWORD or --redis-password-file."))
    var redisURL: String?
    @Option(help: "File holding the Redis password, e.g. a mounted secret (default: $SG_REDIS_PASSWORD_FILE, else $SG_REDIS_PASSWORD).")
    var redisPasswordFile: String?
    @Option(help: "Redis ACL user name (default: $SG_REDIS_USER, else the URL's user).")
    var redisUser: String?

    @Option(help: "PEM file of the CAs that issue the server's certificate, for rediss:// (default: $SG_TLS_CA_FILE, else the system's).")
    var tlsCAFile: String?
    @Option(help: "PEM client certificate for mutual TLS, with --tls-key-file (default: $SG_TLS_CERT_FILE).")
    var tlsCertFile: String?
    @Option(help: "PEM private key of --tls-cert-file (default: $SG_TLS_KEY_FILE).")
    var tlsKeyFile: String?
    @Option(help: "Name sent as SNI and checked against the server's certificate (default: $SG_TLS_SERVER_NAME, else the URL's host).")
    var tlsServerName: String?
    @Flag(help: "Accept any server certificate (tests only; logs a warning; default: $SG_TLS_INSECURE_SKIP_VERIFY).")
    var tlsInsecureSkipVerify = false

    /// The TLS settings as the worker takes them: each flag, else its `SG_TLS_*` variable.
    struct TLSSettings: Equatable {
        var caFile, certFile, keyFile, serverName: String?
        var insecureSkipVerify: Bool
    }

    func tlsSettings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TLSSettings {
        func variable(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var skip = tlsInsecureSkipVerify
        if !skip, let text = variable("SG_TLS_INSECURE_SKIP_VERIFY") {
            switch text.lowercased() {
            case "true", "yes", "on", "1": skip = true
            case "false", "no", "off", "0": skip = false
            default: throw ValidationError("SG_TLS_INSECURE_SKIP_VERIFY must be true or false, got '\(text)'")
            }
        }
        let settings = TLSSettings(
            caFile: tlsCAFile ?? variable("SG_TLS_CA_FILE"), certFile: tlsCertFile ?? variable("SG_TLS_CERT_FILE"),
            keyFile: tlsKeyFile ?? variable("SG_TLS_KEY_FILE"), serverName: tlsServerName ?? variable("SG_TLS_SERVER_NAME"),
            insecureSkipVerify: skip)
        if (settings.certFile == nil) != (settings.keyFile == nil) {
            throw ValidationError("--tls-cert-file and --tls-key-file (or SG_TLS_CERT_FILE and SG_TLS_KEY_FILE) go together: mutual TLS takes both")
        }
        return settings
    }

    func validate() throws { _ = try tlsSettings() }

    /// The configuration to connect with; warnings (a password in --redis-url) go to stderr first.
    func configuration() async throws -> RedisConfiguration {
        let passwordFile = redisPasswordFile ?? ProcessInfo.processInfo.environment["SG_REDIS_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        return applyingTLS(to: try await Self.resolve(url: redisURL, passwordFile: passwordFile, user: redisUser))
    }

    func client(logger: Logger = Logger(label: "redis")) async throws -> RedisClient {
        RedisClient(configuration: try await configuration(), logger: logger)
    }

    /// The `--tls-*` options apply to every rediss:// configuration a command uses.
    func applyingTLS(to configuration: RedisConfiguration) -> RedisConfiguration {
        // validate() already refused settings that do not parse.
        guard configuration.tls != nil, let tls = try? tlsSettings() else { return configuration }
        var configuration = configuration
        configuration.tls = RedisTLSConfiguration(
            caFile: tls.caFile, certificateFile: tls.certFile, keyFile: tls.keyFile, serverName: tls.serverName,
            verifiesPeer: !tls.insecureSkipVerify)
        return configuration
    }

    /// The same `--tls-*` options as `stream-consumer` flags, for the workers `bench worker` starts.
    var workerFlags: [String] {
        var flags: [String] = []
        for (name, value) in [
            ("--tls-ca-file", tlsCAFile), ("--tls-cert-file", tlsCertFile), ("--tls-key-file", tlsKeyFile),
            ("--tls-server-name", tlsServerName),
        ] { if let value { flags += [name, value] } }
        if tlsInsecureSkipVerify { flags.append("--tls-insecure-skip-verify") }
        return flags
    }

    /// Resolves one connection; `urlOption`/`urlVariable` name where a URL other than --redis-url came from.
    static func resolve(url: String?, passwordFile: String?, user: String?,
                        urlOption: String = "--redis-url", urlVariable: String = "SG_REDIS_URL",
                        sharedCredentials: Bool = true) async throws -> RedisConfiguration {
        let contents: String? = try await passwordFile.asyncMap { path in
            try await BlockingIO.run {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw CommandFailure("--redis-password-file: cannot read '\(path)'")
                }
                return String(decoding: data, as: UTF8.self)
            }
        }
        let connection: ToolConnection
        do {
            connection = try ToolConnection.resolve(url: url, passwordFileContents: contents, user: user,
                                                    environment: ProcessInfo.processInfo.environment,
                                                    urlOption: urlOption, urlVariable: urlVariable, sharedCredentials: sharedCredentials)
        } catch {
            throw ValidationError(error.description)
        }
        for warning in connection.warnings { writeStderr(warning + "\n") }
        return connection.configuration
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// The one wording of `--json` across sgctl.
let jsonHelp = "Print the report as one JSON object on one line."

/// `--namespace` and `--key-prefix`: which environment's keys a command works on.
struct NamespaceOptions: ParsableArguments {
    @Option(help: "Key prefix of production (the worker's --key-prefix).")
    var keyPrefix = "sg"
    @Option(help: "Environment such as 'staging': keys under <key-prefix>:<namespace>, streams renamed into it (docs/staging.md).")
    var namespace: String?

    @OptionGroup var layout: PartitionOptions

    func resolved() throws -> KeyNamespace {
        do { return try KeyNamespace(base: keyPrefix, name: namespace) } catch { throw ValidationError(error.description) }
    }

    /// The environment's key layout, partitions included.
    func keys() throws -> WorkerKeys { try layout.keys(prefix: try resolved().keyPrefix) }
}

/// `--partitions`, which must match the workers': it decides which stream and which keys a
/// channel's messages live in.
struct PartitionOptions: ParsableArguments {
    static let defaultCount = 16

    @Option(help: "Partition streams the input is split into, as the workers are told; 1 is the single-stream layout (default: $SG_PARTITIONS, else \(PartitionOptions.defaultCount) like the worker).")
    var partitions: Int?

    func count(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int {
        if let partitions { return partitions }
        guard let text = environment["SG_PARTITIONS"] else { return Self.defaultCount }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("SG_PARTITIONS must be a whole number, got '\(text)'")
        }
        return value
    }

    func keys(prefix: String) throws -> WorkerKeys { try layoutKeys(prefix: prefix, partitions: try count()) }
}

/// The key layout named by `--key-prefix` and `--partitions`, checked as the worker checks them.
func layoutKeys(prefix: String, partitions: Int) throws -> WorkerKeys {
    guard (1...WorkerConfiguration.maxPartitions).contains(partitions) else {
        throw ValidationError("--partitions must be in 1...\(WorkerConfiguration.maxPartitions), got \(partitions)")
    }
    return WorkerKeys(prefix: prefix, partitions: partitions)
}
