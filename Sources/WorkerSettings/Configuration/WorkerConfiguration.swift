import Foundation
import Logging
import RedisClient

/// What the worker does with each entry.
public enum HandlerKind: String, Sendable, Equatable, CaseIterable {
    /// Appends each entry to its channel's capped history list.
    case history
    /// POSTs each entry to `handler-url` and applies the state update it answers with (docs/webhook.md).
    case http
}

/// How log lines are written.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// swift-log's human-readable lines.
    case text
    /// One JSON object per line, for log collectors.
    case json
}

/// Everything the stream worker can be told, resolved from flags, then environment, then a YAML file, then defaults.
///
/// Build one with ``load(flags:environment:file:)``; the memberwise ``init`` does not validate.
/// `description` never shows the password; see ``redactedDescription``.
public struct WorkerConfiguration: Sendable, Equatable {
    /// `redis://[user[:password]@]host[:port][/db]`, `rediss://…` (TLS) or `unix:///path`. May carry a password; print ``redactedDescription``.
    public var redisURL: String
    /// From `redis-password-file` or `SG_REDIS_PASSWORD`; never from a flag, which `ps` would show.
    public var redisPassword: String?
    /// The file `redisPassword` was read from, if it came from one.
    public var redisPasswordFile: String?
    /// TLS settings (`tls-*` options) for a `rediss://` URL; `nil` for `redis://` and `unix://`.
    public var tls: RedisTLSConfiguration?
    /// Streams to consume, in order. With more than one partition each is the base name of its
    /// partition streams (`<stream>:{p0}` …); see ``WorkerKeys``.
    public var streams: [String]
    /// How many partition streams the input is split into (default 16); 1 reads `streams` as they are.
    public var partitions: Int
    /// A single inbound stream whose entries this worker moves into the partition streams of the first
    /// stream, in order, while it holds the router lease (`route-from`); nil for no routing.
    public var routeFrom: String?
    /// Consumer group name.
    public var group: String
    /// This worker's consumer name in the group; must be unique among live workers.
    public var consumer: String
    /// The entry field holding the channel id, which picks the lock and the ordering.
    public var channelField: String
    /// Entries handled at once, across channels.
    public var concurrency: Int
    /// The `COUNT` of each XREADGROUP, which Redis applies to every stream read: per owned
    /// partition when partitioned.
    public var batch: Int
    /// How long XREADGROUP blocks when there is nothing new (`block-ms`).
    public var blockTime: Duration
    /// How long a channel lock lives without renewal.
    public var lockTTL: Duration
    /// How long an entry stays pending before another worker may claim it; at least 2 x ``lockTTL``.
    public var claimIdle: Duration
    /// Deliveries after which an entry is dead-lettered.
    public var maxDeliveries: Int
    /// How long to wait for a missing sequence number before skipping past it.
    public var gapTimeout: Duration
    public var handler: HandlerKind
    /// Where the `http` handler POSTs each message; required by it, refused without it.
    public var handlerURL: String?
    /// How long the `http` handler waits for an answer before counting a handler failure.
    public var handlerTimeout: Duration
    /// Entries kept per channel by the history handler.
    public var historyMax: Int
    /// Extra time spent on each entry, to simulate real work (`work-ms`).
    public var workTime: Duration
    /// How long in-flight entries may take to finish after a shutdown signal.
    public var shutdownGrace: Duration
    /// Prefix of every key the worker writes; see ``WorkerKeys``.
    public var keyPrefix: String
    /// Entries larger than this are dead-lettered as oversized instead of handled.
    public var maxEntryBytes: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// Port of the operator HTTP server (`/metrics`, `/health/live`, `/health/ready`); `nil` means no server.
    /// 0 picks a free port, which the worker logs.
    public var metricsPort: Int?
    /// Address the operator HTTP server listens on.
    public var metricsHost: String

    /// A configuration with the given values, unchecked. `claimIdle` defaults to 2 x `lockTTL`.
    public init(
        redisURL: String = "redis://127.0.0.1:6379",
        redisPassword: String? = nil,
        redisPasswordFile: String? = nil,
        tls: RedisTLSConfiguration? = nil,
        streams: [String] = ["sg:stream:inbound"],
        partitions: Int = 16,
        routeFrom: String? = nil,
        group: String = "workers",
        consumer: String = WorkerConfiguration.defaultConsumerName(),
        channelField: String = "channel_id",
        concurrency: Int = 64,
        batch: Int = 256,
        blockTime: Duration = .milliseconds(1000),
        lockTTL: Duration = .seconds(10),
        claimIdle: Duration? = nil,
        maxDeliveries: Int = 5,
        gapTimeout: Duration = .seconds(30),
        handler: HandlerKind = .history,
        handlerURL: String? = nil,
        handlerTimeout: Duration = .seconds(10),
        historyMax: Int = 100,
        workTime: Duration = .zero,
        shutdownGrace: Duration = .seconds(30),
        keyPrefix: String = "sg",
        maxEntryBytes: Int = 65536,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .text,
        metricsPort: Int? = nil,
        metricsHost: String = "127.0.0.1"
    ) {
        self.redisURL = redisURL
        self.redisPassword = redisPassword
        self.redisPasswordFile = redisPasswordFile
        self.tls = tls
        self.streams = streams
        self.partitions = partitions
        self.routeFrom = routeFrom
        self.group = group
        self.consumer = consumer
        self.channelField = channelField
        self.concurrency = concurrency
        self.batch = batch
        self.blockTime = blockTime
        self.lockTTL = lockTTL
        self.claimIdle = claimIdle ?? lockTTL * 2
        self.maxDeliveries = maxDeliveries
        self.gapTimeout = gapTimeout
        self.handler = handler
        self.handlerURL = handlerURL
        self.handlerTimeout = handlerTimeout
        self.historyMax = historyMax
        self.workTime = workTime
        self.shutdownGrace = shutdownGrace
        self.keyPrefix = keyPrefix
        self.maxEntryBytes = maxEntryBytes
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.metricsPort = metricsPort
        self.metricsHost = metricsHost
    }

    /// The most partitions a deployment may have.
    public static let maxPartitions = 1024

    /// The key layout these options give.
    public var keys: WorkerKeys { WorkerKeys(prefix: keyPrefix, partitions: partitions) }

    /// Every stream the worker may read: the partition streams of every configured stream.
    public var inputStreams: [String] { streams.flatMap { keys.streams($0) } }

    /// Every option at its default; `consumer` is this machine's `<hostname>-<pid>`.
    public static let defaults = WorkerConfiguration()

    /// The option names accepted as flags and YAML keys, in documentation order.
    public static let optionNames: [String] = ConfigurationOption.allCases.map(\.rawValue)

    /// The environment variable for an option name: `lock-ttl` → `SG_LOCK_TTL`.
    public static func environmentVariable(for option: String) -> String {
        ConfigurationOption.environmentName(option)
    }

    /// The lease a lock may have, and why: renewals go out every third of it, so a lease of a few
    /// milliseconds expires before a renewal can reach Redis, and a lease of days leaves a crashed
    /// worker's channel locked that long.
    static let lockTTLRange = (
        bounds: Duration.milliseconds(10)...Duration.seconds(86_400),
        why: "a shorter lease expires before its renewal reaches Redis, a longer one keeps a crashed worker's channels locked for as long"
    )

    /// `SG_` variables the worker reads besides the options' own.
    static let otherEnvironmentVariables: Set<String> = [
        ConfigurationLoader.passwordEnvironment, ConfigurationLoader.configEnvironment,
        "SG_AUDIT_STREAM", "SG_AUDIT_JITTER_MS", "SG_AUDIT_SAMPLE",
    ]

    /// `SG_` variables in `environment` that nothing reads, each with the closest known name when
    /// that is near. A misspelt variable would otherwise be ignored without a word (a misspelt
    /// YAML key is an error); these are warnings, since other tools share the prefix.
    /// Scripts/render-acl.sh's `SG_<USER>_PASSWORD[_FILE]` and the tests' `SG_TEST_*` are known.
    public static func unknownEnvironmentVariables(_ environment: [String: String]) -> [(name: String, suggestion: String?)] {
        let known = Set(optionNames.map(environmentVariable(for:))).union(otherEnvironmentVariables)
        return environment.keys.sorted().compactMap { name in
            guard name.hasPrefix("SG_"), !known.contains(name), !name.hasPrefix("SG_TEST_"),
                  !name.hasSuffix("_PASSWORD"), !name.hasSuffix("_PASSWORD_FILE") else { return nil }
            return (name, ConfigurationLoader.closest(to: name, among: known.sorted()))
        }
    }

    /// `<hostname>-<pid>`: unique per live process, and says where to look.
    public static func defaultConsumerName() -> String {
        // gethostname rather than ProcessInfo.hostName, which may wait on DNS.
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return "\(host.isEmpty ? "worker" : host)-\(getpid())"
    }

    /// Loads with precedence flags > environment > file > defaults.
    ///
    /// - Parameters:
    ///   - flags: CLI option name (`"lock-ttl"`) to raw value; `stream` may be comma-separated.
    ///     `redis-password` is refused. `config` is used as the file path when `file` is nil.
    ///   - environment: Usually `ProcessInfo.processInfo.environment`; `SG_*` variables, empty ones ignored.
    ///   - file: The YAML file from `--config`; when nil, `SG_CONFIG` names it, and without either there is none.
    public static func load(
        flags: [String: String], environment: [String: String], file: String?
    ) throws(ConfigurationError) -> WorkerConfiguration {
        let (yaml, path) = try configFile(flags: flags, environment: environment, file: file)
        return try load(flags: flags, environment: environment, yaml: yaml, fileSource: .file(path))
    }

    /// Where the operator HTTP server listens (``metricsPort``, ``metricsHost``), from the same
    /// sources with the same precedence as ``load(flags:environment:file:)``, without reading or
    /// checking anything else: a health probe must not fail on a rotated password or TLS file.
    public static func operatorAddress(
        flags: [String: String], environment: [String: String], file: String?
    ) throws(ConfigurationError) -> (port: Int?, host: String) {
        let (yaml, path) = try configFile(flags: flags, environment: environment, file: file)
        let l = try ConfigurationLoader(flags: flags, environment: environment, yaml: yaml, fileSource: .file(path))
        return (try l.optionalInteger(.metricsPort, in: 0...65535),
                try l.string(.metricsHost, default: WorkerConfiguration.defaults.metricsHost, allowWhitespace: false))
    }

    /// The YAML file's text and path: `file`, else the `config` flag, else `SG_CONFIG`; none without them.
    private static func configFile(
        flags: [String: String], environment: [String: String], file: String?
    ) throws(ConfigurationError) -> (yaml: String?, path: String?) {
        var path: String?
        var source: ConfigurationSource = .flag("config")
        if let file {
            path = file
        } else if let flag = flags["config"], !flag.isEmpty {
            path = flag
        } else if let env = environment[ConfigurationLoader.configEnvironment], !env.isEmpty {
            path = env
            source = .environment(ConfigurationLoader.configEnvironment)
        }
        guard let path else { return (nil, nil) }
        return (try ConfigurationLoader.readConfigFile(path: path, source: source), path)
    }

    /// Like ``load(flags:environment:file:)`` but with the YAML as text (`nil` for no file), so tests need no files.
    /// `SG_CONFIG` is not consulted.
    public static func load(
        flags: [String: String], environment: [String: String], yaml: String?
    ) throws(ConfigurationError) -> WorkerConfiguration {
        try load(flags: flags, environment: environment, yaml: yaml, fileSource: .file(nil))
    }

    static func load(
        flags: [String: String], environment: [String: String], yaml: String?, fileSource: ConfigurationSource
    ) throws(ConfigurationError) -> WorkerConfiguration {
        let l = try ConfigurationLoader(flags: flags, environment: environment, yaml: yaml, fileSource: fileSource)
        let d = WorkerConfiguration.defaults
        let redisURL = try l.redisURL(default: d.redisURL)
        let (password, passwordFile) = try l.password()
        let tls = try l.tls(redisURL: redisURL)
        let streams = try l.list(.stream, default: d.streams)
        let partitions = try l.integer(.partitions, default: d.partitions, minimum: 1)
        if partitions > maxPartitions, let setting = l.setting(.partitions) {
            throw .invalidValue(option: ConfigurationOption.partitions.rawValue, value: "\(partitions)",
                                expected: "an integer in 1...\(maxPartitions)", source: setting.source)
        }
        if partitions == 1, redisURL.lowercased().contains("+cluster://") {
            throw .conflict(option: ConfigurationOption.partitions.rawValue,
                            message: "a Redis Cluster needs partitions > 1: only a partition's hash tag keeps each commit's keys in one slot",
                            source: l.setting(.partitions)?.source ?? .defaults)
        }
        let keyPrefix = try l.string(.keyPrefix, default: d.keyPrefix, allowWhitespace: false)
        let routeFrom = try l.optionalString(.routeFrom)
        if partitions > 1 {
            // The partition's hash tag must be the first braces in every name, or a commit spans slots.
            let named = [(ConfigurationOption.keyPrefix, keyPrefix)] + streams.map { (.stream, $0) }
                + (routeFrom.map { [(.routeFrom, $0)] } ?? [])
            for (option, value) in named where value.contains("{") || value.contains("}") {
                throw .conflict(option: option.rawValue,
                                message: "\"\(value)\" contains { or }, which would hide the partition's hash tag",
                                source: l.setting(option)?.source ?? .defaults)
            }
        }
        if let routeFrom, let setting = l.setting(.routeFrom) {
            if partitions == 1 {
                throw .conflict(option: ConfigurationOption.routeFrom.rawValue,
                                message: "routing needs partitions > 1 (there is nothing to route into)", source: setting.source)
            }
            if streams.count != 1 {
                throw .conflict(option: ConfigurationOption.routeFrom.rawValue,
                                message: "routing needs exactly one stream to route into, got \(streams.count)", source: setting.source)
            }
            if WorkerKeys(prefix: keyPrefix, partitions: partitions).streams(streams[0]).contains(routeFrom) {
                throw .conflict(option: ConfigurationOption.routeFrom.rawValue,
                                message: "\"\(routeFrom)\" is one of the partition streams it would route into", source: setting.source)
            }
        }
        let group = try l.string(.group, default: d.group)
        let consumer = try l.string(.consumer, default: d.consumer)
        let channelField = try l.string(.channelField, default: d.channelField)
        let concurrency = try l.integer(.concurrency, default: d.concurrency, minimum: 1)
        let batch = try l.integer(.batch, default: d.batch, minimum: 1)
        let blockTime = try l.milliseconds(.blockMs, default: d.blockTime)
        let lockTTL = try l.duration(.lockTTL, default: d.lockTTL, allowZero: false, range: Self.lockTTLRange)
        // Unset, claim-idle follows lock-ttl, so raising only the TTL never trips the check below.
        let claimIdle = try l.duration(.claimIdle, default: lockTTL * 2, allowZero: false)
        if claimIdle < lockTTL * 2, let setting = l.setting(.claimIdle) {
            throw .conflict(
                option: ConfigurationOption.claimIdle.rawValue,
                message: "\(Self.seconds(claimIdle)) is less than 2 x lock-ttl (\(Self.seconds(lockTTL * 2))); "
                    + "entries must not be claimed from a worker that may still hold their channel lock",
                source: setting.source)
        }
        let handler: HandlerKind = try l.choice(.handler, default: d.handler)
        let handlerURL = try l.webhookURL()
        if handler == .http, handlerURL == nil {
            throw .conflict(
                option: ConfigurationOption.handlerURL.rawValue, message: "handler http needs handler-url",
                source: l.setting(.handler)?.source ?? .defaults)
        }
        if handler != .http, handlerURL != nil, let setting = l.setting(.handlerURL) {
            throw .conflict(
                option: ConfigurationOption.handlerURL.rawValue,
                message: "is only used by handler http, but handler is \(handler.rawValue)", source: setting.source)
        }
        return WorkerConfiguration(
            redisURL: redisURL,
            redisPassword: password,
            redisPasswordFile: passwordFile,
            tls: tls,
            streams: streams,
            partitions: partitions,
            routeFrom: routeFrom,
            group: group,
            consumer: consumer,
            channelField: channelField,
            concurrency: concurrency,
            batch: batch,
            blockTime: blockTime,
            lockTTL: lockTTL,
            claimIdle: claimIdle,
            maxDeliveries: try l.integer(.maxDeliveries, default: d.maxDeliveries, minimum: 1),
            gapTimeout: try l.duration(.gapTimeout, default: d.gapTimeout, allowZero: false),
            handler: handler,
            handlerURL: handlerURL,
            handlerTimeout: try l.duration(.handlerTimeout, default: d.handlerTimeout, allowZero: false),
            historyMax: try l.integer(.historyMax, default: d.historyMax, minimum: 1),
            workTime: try l.milliseconds(.workMs, default: d.workTime),
            shutdownGrace: try l.duration(.shutdownGrace, default: d.shutdownGrace, allowZero: true),
            keyPrefix: keyPrefix,
            maxEntryBytes: try l.integer(.maxEntryBytes, default: d.maxEntryBytes, minimum: 1),
            logLevel: try l.choice(.logLevel, default: d.logLevel),
            logFormat: try l.choice(.logFormat, default: d.logFormat),
            metricsPort: try l.optionalInteger(.metricsPort, in: 0...65535),
            metricsHost: try l.string(.metricsHost, default: d.metricsHost, allowWhitespace: false)
        )
    }

    /// Every option and its effective value, in documentation order, with every password shown as `***`.
    public var redactedOptions: [(String, String)] {
        let lines: [(String, String)] = [
            ("redis-url", ConfigurationLoader.redactedURL(redisURL)),
            ("redis-password", redisPassword == nil ? "(none)" : "***"),
            ("redis-password-file", redisPasswordFile ?? "(none)"),
        ] + tlsOptionLines + [
            ("stream", streams.joined(separator: ",")),
            ("partitions", "\(partitions)"),
            ("route-from", routeFrom ?? "(none)"),
            ("group", group),
            ("consumer", consumer),
            ("channel-field", channelField),
            ("concurrency", "\(concurrency)"),
            ("batch", "\(batch)"),
            ("block-ms", Self.milliseconds(blockTime)),
            ("lock-ttl", Self.seconds(lockTTL)),
            ("claim-idle", Self.seconds(claimIdle)),
            ("max-deliveries", "\(maxDeliveries)"),
            ("gap-timeout", Self.seconds(gapTimeout)),
            ("handler", handler.rawValue),
            ("handler-url", handlerURL.map(ConfigurationLoader.redactedWebhookURL) ?? "(none)"),
            ("handler-timeout", Self.seconds(handlerTimeout)),
            ("history-max", "\(historyMax)"),
            ("work-ms", Self.milliseconds(workTime)),
            ("shutdown-grace", Self.seconds(shutdownGrace)),
            ("key-prefix", keyPrefix),
            ("max-entry-bytes", "\(maxEntryBytes)"),
            ("log-level", logLevel.rawValue),
            ("log-format", logFormat.rawValue),
            ("metrics-port", metricsPort.map(String.init) ?? "(off)"),
            ("metrics-host", metricsHost),
        ]
        return lines
    }

    /// The effective configuration, one `option: value` per line, with every password shown as `***`.
    public var redactedDescription: String {
        redactedOptions.map { "\($0.0): \($0.1)" }.joined(separator: "\n")
    }

    /// The same on one line (`option=value`, separated by spaces, values with spaces quoted), for a log line.
    public var redactedSummary: String {
        redactedOptions.map { name, value in
            let quoted = value.contains(where: { $0.isWhitespace || $0 == "\"" })
                ? "\"" + value.replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n") + "\""
                : value
            return "\(name)=\(quoted)"
        }.joined(separator: " ")
    }

    /// `10s`, `1.5s`: seconds with only the digits needed, in a form the duration parser reads back.
    static func seconds(_ d: Duration) -> String {
        let (whole, atto) = d.components
        let nanos = atto / 1_000_000_000
        guard nanos != 0 else { return "\(whole)s" }
        var fraction = String(nanos)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)s"
    }

    static func milliseconds(_ d: Duration) -> String {
        let (whole, atto) = d.components
        return "\(whole * 1000 + atto / 1_000_000_000_000_000)"
    }
}

extension WorkerConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Same as ``redactedDescription``, so interpolating a configuration into a log cannot leak the password.
    public var description: String { redactedDescription }
    public var debugDescription: String { redactedDescription }
    /// Keeps `dump` and test-failure output from printing the password.
    public var customMirror: Mirror {
        Mirror(self, children: [
            "redisURL": ConfigurationLoader.redactedURL(redisURL),
            "redisPassword": redisPassword == nil ? "nil" : "***",
            "redisPasswordFile": redisPasswordFile as Any,
            "tls": tls as Any,
            "streams": streams,
            "partitions": partitions,
            "routeFrom": routeFrom as Any,
            "group": group,
            "consumer": consumer,
            "channelField": channelField,
            "concurrency": concurrency,
            "batch": batch,
            "blockTime": blockTime,
            "lockTTL": lockTTL,
            "claimIdle": claimIdle,
            "maxDeliveries": maxDeliveries,
            "gapTimeout": gapTimeout,
            "handler": handler,
            "handlerURL": handlerURL.map(ConfigurationLoader.redactedWebhookURL) as Any,
            "handlerTimeout": handlerTimeout,
            "historyMax": historyMax,
            "workTime": workTime,
            "shutdownGrace": shutdownGrace,
            "keyPrefix": keyPrefix,
            "maxEntryBytes": maxEntryBytes,
            "logLevel": logLevel,
            "logFormat": logFormat,
            "metricsPort": metricsPort as Any,
            "metricsHost": metricsHost,
        ])
    }
}
