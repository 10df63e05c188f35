import ArgumentParser
import AsyncHTTPClient
import BuildInfo
import Foundation
import JSONLogging
import Logging
import OTel
import OperatorHTTP
import RedisClient
import ServiceLifecycle
import StreamWorker
import Tracing

/// The worker's command line: the `stream-consumer` and `stargazer` executables run it.
public struct StreamConsumerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stream-consumer",
        abstract: "Consume Redis Streams with per-channel mutual exclusion, strict per-channel order and fenced commits.",
        discussion: """
            Every option can also come from an environment variable (SG_ plus the option name in capitals with \
            underscores, e.g. SG_LOCK_TTL) or from the YAML file given with --config (keys as the option names). \
            Precedence: flags, environment, file, defaults. The Redis password comes from the URL, \
            --redis-password-file or SG_REDIS_PASSWORD, never from a flag of its own. See Config/worker.yaml.
            """,
        version: BuildInfo.versionLine
    )

    @Option(parsing: .unconditional, help: Self.help("YAML configuration file.", "SG_CONFIG")) var config: String?
    @Option(parsing: .unconditional, help: Self.help("Redis URL: redis://, rediss://, unix:// or redis+cluster://host:port[,host:port…] (default: redis://127.0.0.1:6379).", "SG_REDIS_URL")) var redisURL: String?
    @Option(parsing: .unconditional, help: Self.help("File holding the Redis password.", "SG_REDIS_PASSWORD_FILE")) var redisPasswordFile: String?
    @Option(parsing: .unconditional, help: Self.help("PEM file of the CAs that issue the Redis server's certificate, for rediss:// (default: the system's).", "SG_TLS_CA_FILE")) var tlsCAFile: String?
    @Option(parsing: .unconditional, help: Self.help("PEM client certificate for mutual TLS (with --tls-key-file).", "SG_TLS_CERT_FILE")) var tlsCertFile: String?
    @Option(parsing: .unconditional, help: Self.help("PEM private key of --tls-cert-file.", "SG_TLS_KEY_FILE")) var tlsKeyFile: String?
    @Option(parsing: .unconditional, help: Self.help("Name sent as SNI and checked against the server's certificate (default: the URL's host).", "SG_TLS_SERVER_NAME")) var tlsServerName: String?
    @Flag(help: Self.help("Accept any server certificate (tests only; logs a warning).", "SG_TLS_INSECURE_SKIP_VERIFY")) var tlsInsecureSkipVerify = false
    @Option(parsing: .singleValue, help: Self.help("Stream to consume; repeat or comma-separate for several (default: sg:stream:inbound).", "SG_STREAM")) var stream: [String] = []
    @Option(parsing: .unconditional, help: Self.help("Partition streams the input is split into; 1 reads --stream as it is (default: 16).", "SG_PARTITIONS")) var partitions: String?
    @Option(parsing: .unconditional, help: Self.help("Route a single inbound stream into the partition streams, one router at a time (default: off).", "SG_ROUTE_FROM")) var routeFrom: String?
    @Option(parsing: .unconditional, help: Self.help("Consumer group (default: workers).", "SG_GROUP")) var group: String?
    @Option(parsing: .unconditional, help: Self.help("Consumer name (default: hostname-pid).", "SG_CONSUMER")) var consumer: String?
    @Option(parsing: .unconditional, help: Self.help("Field holding the channel id (default: channel_id).", "SG_CHANNEL_FIELD")) var channelField: String?
    @Option(parsing: .unconditional, help: Self.help("Channels processed in parallel (default: 64).", "SG_CONCURRENCY")) var concurrency: String?
    @Option(parsing: .unconditional, help: Self.help("Entries per read of each stream (default: 256).", "SG_BATCH")) var batch: String?
    @Option(parsing: .unconditional, help: Self.help("How long a read blocks, in ms (default: 1000).", "SG_BLOCK_MS")) var blockMs: String?
    @Option(parsing: .unconditional, help: Self.help("Lock lease in seconds, fractions allowed (default: 10).", "SG_LOCK_TTL")) var lockTTL: String?
    @Option(parsing: .unconditional, help: Self.help("Idle time before another worker reclaims an entry, in seconds (default: 2 x lock-ttl).", "SG_CLAIM_IDLE")) var claimIdle: String?
    @Option(parsing: .unconditional, help: Self.help("Deliveries before an entry is dead-lettered (default: 5).", "SG_MAX_DELIVERIES")) var maxDeliveries: String?
    @Option(parsing: .unconditional, help: Self.help("How long to wait for a missing earlier seq, in seconds (default: 30).", "SG_GAP_TIMEOUT")) var gapTimeout: String?
    @Option(parsing: .unconditional, help: Self.help("Message handler: history (default) or http (POST each message to --handler-url).", "SG_HANDLER")) var handler: String?
    @Option(parsing: .unconditional, help: Self.help("URL the http handler POSTs each message to.", "SG_HANDLER_URL")) var handlerURL: String?
    @Option(parsing: .unconditional, help: Self.help("How long the http handler waits for an answer, in seconds (default: 10).", "SG_HANDLER_TIMEOUT")) var handlerTimeout: String?
    @Option(parsing: .unconditional, help: Self.help("History entries kept per channel (default: 100).", "SG_HISTORY_MAX")) var historyMax: String?
    @Option(parsing: .unconditional, help: Self.help("Simulated work per message, in ms (default: 0).", "SG_WORK_MS")) var workMs: String?
    @Option(parsing: .unconditional, help: Self.help("Time to finish in-flight messages on SIGTERM, in seconds (default: 30).", "SG_SHUTDOWN_GRACE")) var shutdownGrace: String?
    @Option(parsing: .unconditional, help: Self.help("Key prefix (default: sg).", "SG_KEY_PREFIX")) var keyPrefix: String?
    @Option(parsing: .unconditional, help: Self.help("Largest entry accepted, in bytes (default: 65536).", "SG_MAX_ENTRY_BYTES")) var maxEntryBytes: String?
    @Option(parsing: .unconditional, help: Self.help("Log level: trace, debug, info, notice, warning, error, critical (default: info).", "SG_LOG_LEVEL")) var logLevel: String?
    @Option(parsing: .unconditional, help: Self.help("Log format: text or json (one object per line) (default: text).", "SG_LOG_FORMAT")) var logFormat: String?
    @Option(parsing: .unconditional, help: Self.help("Serve /metrics, /health/live and /health/ready on this port (default: off; 0 picks a free port).", "SG_METRICS_PORT")) var metricsPort: String?
    @Option(parsing: .unconditional, help: Self.help("Address the metrics and health server listens on (default: 127.0.0.1; the container image sets 0.0.0.0).", "SG_METRICS_HOST")) var metricsHost: String?

    /// An option's help with the variable that also sets it, e.g. `… (default: 64) [env: SG_CONCURRENCY]`.
    static func help(_ text: String, _ variable: String) -> ArgumentHelp {
        ArgumentHelp("\(text) [env: \(variable)]")
    }

    public init() {}

    /// Where a worker started with `arguments` (its command line without the program's name) and
    /// `environment` serves metrics and health, resolved as the worker resolves it: what
    /// `sgctl health` uses to find the port a worker in the same container serves on.
    public static func operatorAddress(arguments: [String], environment: [String: String]) throws -> (port: Int?, host: String) {
        let command = try parse(arguments)
        return try WorkerConfiguration.operatorAddress(flags: command.flags(), environment: environment, file: command.config)
    }

    /// The options given on the command line, by their names in the configuration.
    func flags() -> [String: String] {
        var flags: [String: String] = [:]
        let pairs: [(String, String?)] = [
            ("redis-url", redisURL), ("redis-password-file", redisPasswordFile),
            ("partitions", partitions), ("route-from", routeFrom), ("group", group), ("consumer", consumer),
            ("channel-field", channelField), ("concurrency", concurrency), ("batch", batch), ("block-ms", blockMs),
            ("lock-ttl", lockTTL), ("claim-idle", claimIdle), ("max-deliveries", maxDeliveries), ("gap-timeout", gapTimeout),
            ("handler", handler), ("handler-url", handlerURL), ("handler-timeout", handlerTimeout),
            ("history-max", historyMax), ("work-ms", workMs), ("shutdown-grace", shutdownGrace),
            ("key-prefix", keyPrefix), ("max-entry-bytes", maxEntryBytes), ("log-level", logLevel),
            ("log-format", logFormat), ("metrics-port", metricsPort), ("metrics-host", metricsHost),
        ]
        for (name, value) in pairs { if let value { flags[name] = value } }
        for (name, value) in [
            ("tls-ca-file", tlsCAFile), ("tls-cert-file", tlsCertFile), ("tls-key-file", tlsKeyFile),
            ("tls-server-name", tlsServerName), ("tls-insecure-skip-verify", tlsInsecureSkipVerify ? "true" : nil),
        ] { if let value { flags[name] = value } }
        if !stream.isEmpty { flags["stream"] = stream.joined(separator: ",") }
        return flags
    }

    public func run() async throws {
        let configuration: WorkerConfiguration
        do {
            configuration = try WorkerConfiguration.load(flags: flags(), environment: ProcessInfo.processInfo.environment, file: config)
        } catch {
            throw ValidationError("invalid configuration: \(error)")
        }
        let level = configuration.logLevel
        switch configuration.logFormat {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        }
        var logger = Logger(label: "stream-consumer")
        logger[metadataKey: "consumer"] = .string(configuration.consumer)
        // JSON logs carry the configuration as a nested object; text logs as one readable line.
        let summary: Logger.Metadata.Value = configuration.logFormat == .json
            ? .dictionary(configuration.redactedMetadata) : .string(configuration.redactedSummary)
        logger.info("Starting", metadata: ["configuration": summary])
        for (name, suggestion) in WorkerConfiguration.unknownEnvironmentVariables(ProcessInfo.processInfo.environment) {
            let hint = suggestion.map { "; did you mean \($0)?" } ?? ""
            logger.warning("Unknown environment variable \(name) is ignored\(hint)", metadata: ["variable": .string(name)])
        }

        // Traces only when the OTEL_* variables ask for them; the exporter's service is the group's
        // first, so it stops last and flushes the spans of the drain.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var tracer: (any Tracer)?
        let environment = ProcessInfo.processInfo.environment
        do {
            if try TracingSwitch.isEnabled(environment) {
                var otel = OTel.Configuration.default
                otel.serviceName = "stream-consumer"
                otel.logs.enabled = false
                otel.metrics.enabled = false
                // Its own start-up chatter stays out of the log; export failures still show.
                otel.diagnosticLogLevel = .warning
                let backend = try OTel.makeTracingBackend(configuration: otel)
                InstrumentationSystem.bootstrap(backend.factory)
                tracer = backend.factory
                services.append(.init(service: backend.service))
                // The endpoint is not logged: it may carry credentials.
                logger.info("Exporting traces over OTLP/HTTP (OTEL_* variables)")
            }
        } catch {
            throw ValidationError("invalid tracing configuration: \(error)")
        }

        // Before any metric object exists: those made earlier would stay no-ops.
        let registry = configuration.metricsPort == nil ? nil : MetricsBackend.bootstrap()

        var redis = try configuration.redisConfiguration()
        redis.clientName = "stream-consumer:\(configuration.consumer)"
        var redisLogger = Logger(label: "redis")
        redisLogger[metadataKey: "consumer"] = .string(configuration.consumer)
        let client = RedisClient(configuration: redis, logger: redisLogger, events: RedisConnectionMetrics.events())
        defer { client.close() }

        // One HTTP client for the process: its connection pool is shared by every channel's requests.
        var http: HTTPClient?
        var handler: any MessageHandler
        switch configuration.handler {
        case .history:
            handler = HistoryHandler(historyMax: configuration.historyMax, work: configuration.workTime)
        case .http:
            guard let url = configuration.handlerURL else { throw ValidationError("handler http needs --handler-url") }
            // A connection per channel in flight (the default is 8 per host, and a request waiting
            // for one would hold its channel); no redirects (a 302 would turn the POST into a GET).
            var httpConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow)
            // A client span per request, and `traceparent` sent on from the message's `handle` span.
            httpConfiguration.tracing.tracer = tracer
            httpConfiguration.connectionPool = .init(
                idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, configuration.concurrency))
            let httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
            http = httpClient
            handler = WebhookHandler(
                client: httpClient, url: url, timeout: configuration.handlerTimeout, defaultListCap: configuration.historyMax)
        }
        if let audit = ProcessInfo.processInfo.environment["SG_AUDIT_STREAM"], !audit.isEmpty {
            let jitter = Int(ProcessInfo.processInfo.environment["SG_AUDIT_JITTER_MS"] ?? "") ?? 0
            let sample = Int(ProcessInfo.processInfo.environment["SG_AUDIT_SAMPLE"] ?? "") ?? 1
            handler = AuditingHandler(wrapping: handler, client: client, stream: audit, consumer: configuration.consumer,
                                      jitter: .milliseconds(jitter), sampleEvery: sample)
        }
        let worker = StreamWorker(configuration: configuration, client: client, handler: handler, tracer: tracer, logger: logger)
        if let registry, let port = configuration.metricsPort {
            let health = worker.health
            let host = configuration.metricsHost
            var httpLogger = Logger(label: "operator-http")
            httpLogger[metadataKey: "consumer"] = .string(configuration.consumer)
            let server = OperatorServer(
                host: host, port: port, registry: registry, build: BuildVersion.current,
                readiness: {
                    switch health.readiness {
                    case .ready: return .ok
                    case .notReady(let reason): return .unavailable(reason: reason)
                    }
                },
                logger: httpLogger,
                onListening: { [httpLogger] port in
                    httpLogger.info("Operator HTTP listening", metadata: ["host": .string(host), "port": .stringConvertible(port)])
                })
            services.append(.init(service: server))
        }
        // Graceful shutdown runs in reverse order: the worker drains first while the HTTP server
        // still answers probes (readiness says "shutting down"), then the server stops.
        services.append(.init(service: worker))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            try? await http?.shutdown()
            throw error
        }
        try await http?.shutdown()
    }
}
