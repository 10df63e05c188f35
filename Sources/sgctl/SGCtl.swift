import ArgumentParser
import Logging
import RedisClient

@main
struct SGCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgctl",
        abstract: "Operator tool for the stream-consumer worker pool.",
        subcommands: [ProduceCommand.self, VerifyCommand.self, ReplayCommand.self, InspectCommand.self, DLQCommand.self,
                      ChaosCommand.self, Bench.self, LockCommand.self]
    )
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (release builds give meaningful numbers).",
        subcommands: [BenchClient.self, BenchLock.self, BenchWorker.self]
    )
}

/// Options every subcommand that talks to Redis shares.
struct RedisOptions: ParsableArguments {
    @Option(help: "Redis URL: redis://[user[:password]@]host[:port][/db], rediss://… (TLS) or unix:///path?db=N.")
    var redisURL = "redis://127.0.0.1:6379"

    @Option(help: "PEM file of the CAs that issue the server's certificate, for rediss:// (default: the system's).")
    var tlsCAFile: String?
    @Option(help: "PEM client certificate for mutual TLS (with --tls-key-file).")
    var tlsCertFile: String?
    @Option(help: "PEM private key of --tls-cert-file.")
    var tlsKeyFile: String?
    @Option(help: "Name sent as SNI and checked against the server's certificate (default: the URL's host).")
    var tlsServerName: String?
    @Flag(help: "Accept any server certificate (tests only; logs a warning).")
    var tlsInsecureSkipVerify = false

    func validate() throws {
        if (tlsCertFile == nil) != (tlsKeyFile == nil) {
            throw ValidationError("--tls-cert-file and --tls-key-file go together (mutual TLS takes both)")
        }
    }

    /// The client configuration for `url` (default `--redis-url`); the `--tls-*` options apply to every rediss:// URL.
    func configuration(url: String? = nil) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: url ?? redisURL)
        if configuration.tls != nil {
            configuration.tls = RedisTLSConfiguration(
                caFile: tlsCAFile, certificateFile: tlsCertFile, keyFile: tlsKeyFile, serverName: tlsServerName,
                verifiesPeer: !tlsInsecureSkipVerify)
        }
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

    func client(url: String? = nil, logger: Logger = Logger(label: "redis")) throws -> RedisClient {
        RedisClient(configuration: try configuration(url: url), logger: logger)
    }
}
