import Foundation
import Logging
import StreamWorker
import Testing

@Suite struct ConfigurationTests {
    /// Loads from text so most tests need no files.
    func load(
        flags: [String: String] = [:], env: [String: String] = [:], yaml: String? = nil
    ) throws(ConfigurationError) -> WorkerConfiguration {
        try WorkerConfiguration.load(flags: flags, environment: env, yaml: yaml)
    }

    /// The error `body` throws; fails the test if it throws none.
    func error(_ body: () throws(ConfigurationError) -> WorkerConfiguration) -> ConfigurationError? {
        do {
            let c = try body()
            Issue.record("expected an error, got \(c)")
            return nil
        } catch {
            return error
        }
    }

    func temporaryFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("sg-config-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Defaults and precedence

    @Test func aClusterURLIsAcceptedWithPartitionsAndRefusedWithout() throws {
        let url = "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"
        #expect(try load(env: ["SG_REDIS_URL": url]).redisURL == url)
        let refused = error { () throws(ConfigurationError) in try load(flags: ["partitions": "1"], env: ["SG_REDIS_URL": url]) }
        #expect(refused?.description.contains("partitions") == true, "\(String(describing: refused))")
        #expect(refused?.description.contains("hash tag") == true)
        let bad = error { () throws(ConfigurationError) in try load(env: ["SG_REDIS_URL": "redis+cluster://10.0.0.1:7000,,x:1"]) }
        #expect(bad?.description.contains("empty node") == true, "\(String(describing: bad))")
        let tls = error { () throws(ConfigurationError) in try load(flags: ["tls-ca-file": "/nonexistent/ca.pem"], env: ["SG_REDIS_URL": "rediss+cluster://h:1"]) }
        #expect(tls?.description.contains("rediss://") != true, "TLS options apply to rediss+cluster://: \(String(describing: tls))")
    }

    @Test func nothingSetGivesTheDefaults() throws {
        let c = try load()
        #expect(c == .defaults)
        #expect(c.redisURL == "redis://127.0.0.1:6379")
        #expect(c.redisPassword == nil)
        #expect(c.streams == ["sg:stream:inbound"])
        #expect(c.group == "workers")
        #expect(c.channelField == "channel_id")
        #expect(c.concurrency == 64 && c.batch == 256)
        #expect(c.blockTime == .milliseconds(1000))
        #expect(c.lockTTL == .seconds(10) && c.claimIdle == .seconds(20))
        #expect(c.maxDeliveries == 5 && c.gapTimeout == .seconds(30))
        #expect(c.handler == .history && c.historyMax == 100)
        #expect(c.handlerURL == nil && c.handlerTimeout == .seconds(10))
        #expect(c.workTime == .zero && c.shutdownGrace == .seconds(30))
        #expect(c.keyPrefix == "sg" && c.maxEntryBytes == 65536 && c.logLevel == .info)
        #expect(c.logFormat == .text && c.metricsPort == nil && c.metricsHost == "127.0.0.1")
    }

    @Test func theDefaultConsumerIsHostnameDashPid() {
        #expect(WorkerConfiguration.defaults.consumer.hasSuffix("-\(ProcessInfo.processInfo.processIdentifier)"))
    }

    @Test func theFileOverridesTheDefaults() throws {
        let c = try load(yaml: "concurrency: 8\nlock-ttl: 3\nlog-level: debug\n")
        #expect(c.concurrency == 8 && c.lockTTL == .seconds(3) && c.logLevel == .debug)
        #expect(c.batch == 256)
    }

    @Test func theEnvironmentOverridesTheFile() throws {
        let c = try load(env: ["SG_CONCURRENCY": "16"], yaml: "concurrency: 8\nbatch: 10\n")
        #expect(c.concurrency == 16 && c.batch == 10)
    }

    @Test func flagsOverrideTheEnvironment() throws {
        let c = try load(
            flags: ["concurrency": "32"], env: ["SG_CONCURRENCY": "16", "SG_GROUP": "g"], yaml: "concurrency: 8\n")
        #expect(c.concurrency == 32 && c.group == "g")
    }

    @Test func everyOptionHasItsEnvironmentVariable() throws {
        let env = [
            "SG_REDIS_URL": "redis://r:1", "SG_STREAM": "a", "SG_GROUP": "g", "SG_CONSUMER": "c",
            "SG_CHANNEL_FIELD": "ch", "SG_CONCURRENCY": "2", "SG_BATCH": "3", "SG_BLOCK_MS": "4",
            "SG_LOCK_TTL": "5", "SG_CLAIM_IDLE": "11", "SG_MAX_DELIVERIES": "6", "SG_GAP_TIMEOUT": "7",
            "SG_HANDLER": "history", "SG_HISTORY_MAX": "8", "SG_WORK_MS": "9", "SG_SHUTDOWN_GRACE": "0",
            "SG_KEY_PREFIX": "p", "SG_MAX_ENTRY_BYTES": "10", "SG_LOG_LEVEL": "error",
            "SG_LOG_FORMAT": "json", "SG_METRICS_PORT": "9100", "SG_METRICS_HOST": "127.0.0.1",
        ]
        let c = try load(env: env)
        let expected = WorkerConfiguration(
            redisURL: "redis://r:1", streams: ["a"], group: "g", consumer: "c", channelField: "ch",
            concurrency: 2, batch: 3, blockTime: .milliseconds(4), lockTTL: .seconds(5), claimIdle: .seconds(11),
            maxDeliveries: 6, gapTimeout: .seconds(7), handler: .history, historyMax: 8, workTime: .milliseconds(9),
            shutdownGrace: .zero, keyPrefix: "p", maxEntryBytes: 10, logLevel: .error,
            logFormat: .json, metricsPort: 9100, metricsHost: "127.0.0.1")
        #expect(c == expected)
        #expect(WorkerConfiguration.optionNames.count == 32)
        #expect(WorkerConfiguration.environmentVariable(for: "max-entry-bytes") == "SG_MAX_ENTRY_BYTES")
    }

    @Test func anEmptyEnvironmentVariableCountsAsUnset() throws {
        let c = try load(env: ["SG_CONCURRENCY": "", "SG_REDIS_PASSWORD": ""], yaml: "concurrency: 8")
        #expect(c.concurrency == 8 && c.redisPassword == nil)
    }

    @Test func anEmptyYAMLValueMeansTheDefault() throws {
        #expect(try load(yaml: "group:\nconsumer: ~\n").group == "workers")
        #expect(try load(yaml: "# only comments\n") == .defaults)
    }

    // MARK: Streams

    @Test func streamsComeFromAYAMLList() throws {
        #expect(try load(yaml: "stream:\n  - a\n  - \"b:c\"\n").streams == ["a", "b:c"])
        #expect(try load(yaml: "stream: [x, y]").streams == ["x", "y"])
    }

    @Test func aSingleYAMLStringIsOneStreamOrACommaList() throws {
        #expect(try load(yaml: "stream: sg:stream:other").streams == ["sg:stream:other"])
        #expect(try load(yaml: "stream: \"a, b\"").streams == ["a", "b"])
    }

    @Test func streamsFromTheEnvironmentAndFlagsAreCommaSeparated() throws {
        #expect(try load(env: ["SG_STREAM": "a, b,c"]).streams == ["a", "b", "c"])
        #expect(try load(flags: ["stream": "x,y"], env: ["SG_STREAM": "a"]).streams == ["x", "y"])
    }

    @Test func anEmptyStreamListNamesStream() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "stream: []") }
        #expect(e?.option == "stream")
        #expect(e?.description.hasPrefix("stream: ") == true)
    }

    @Test func aListForASingleValuedOptionIsAnError() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "group: [a, b]") }
        #expect(e?.option == "group")
        #expect(e?.description.contains("a single value") == true)
    }

    // MARK: Durations

    @Test(arguments: [
        ("1.5", Duration.milliseconds(1500)), ("10", .seconds(10)), ("0.1", .milliseconds(100)),
        ("1500ms", .milliseconds(1500)), ("2s", .seconds(2)), ("1m", .seconds(60)), (" 0.25 ", .milliseconds(250)),
        ("1.5m", .seconds(90)), ("2.5ms", .microseconds(2500)), (".5", .milliseconds(500)),
    ])
    func durationsAcceptFractionsAndSuffixes(text: String, expected: Duration) throws {
        // gap-timeout has no bounds of its own (lock-ttl refuses 2.5ms, below).
        #expect(try load(env: ["SG_GAP_TIMEOUT": text]).gapTimeout == expected)
    }

    @Test(arguments: ["0.0001", "9ms", "86401", "1e12", "1000000000000", "99999999999999999999"])
    func aLeaseBelowTenMillisecondsOrAboveADayIsRefusedWithThatReason(text: String) {
        let e = error { () throws(ConfigurationError) in try load(flags: ["lock-ttl": text]) }
        #expect(e?.option == "lock-ttl")
        #expect(e?.description.contains("is not within 10 ms to 1 day") == true, "\(e?.description ?? "")")
        #expect(e?.description.contains("renewal") == true, "the reason, not only the bounds")
    }

    @Test func theLeaseBoundsThemselvesAreAccepted() throws {
        #expect(try load(flags: ["lock-ttl": "10ms"]).lockTTL == .milliseconds(10))
        #expect(try load(flags: ["lock-ttl": "86400"]).lockTTL == .seconds(86_400))
    }

    @Test func aNegativeBlockTimeSaysWhatIsWrongWithIt() {
        let e = error { () throws(ConfigurationError) in try load(flags: ["block-ms": "-1"]) }
        #expect(e?.description == "block-ms: \"-1\" is not a whole number of milliseconds >= 0 (from --block-ms)")
    }

    @Test func unknownSGVariablesAreNamedWithTheClosestKnownOne() {
        let unknown = WorkerConfiguration.unknownEnvironmentVariables([
            "SG_LOCK_TLL": "5", "SG_CONCURENCY": "4", "SG_LOCK_TTL": "5", "SG_AUDIT_STREAM": "a", "SG_REDIS_PASSWORD": "x",
            "SG_ADMIN_PASSWORD_FILE": "/f", "SG_TEST_REDIS_URL": "redis://127.0.0.1", "SG_COLOUR": "blue", "PATH": "/bin",
        ])
        #expect(unknown.map { $0.name } == ["SG_COLOUR", "SG_CONCURENCY", "SG_LOCK_TLL"])
        #expect(unknown.map { $0.suggestion } == [nil, "SG_CONCURRENCY", "SG_LOCK_TTL"])
    }

    @Test(arguments: ["abc", "-1", "1.2.3", "1e3", "ms", "10h", "0", "0ms", "1 5"])
    func badDurationsNameTheOptionAndSource(text: String) {
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_LOCK_TTL": text]) }
        #expect(e?.option == "lock-ttl")
        #expect(e?.source == .environment("SG_LOCK_TTL"))
        #expect(e?.description.contains("(from SG_LOCK_TTL)") == true)
    }

    @Test func aBadDurationReadsAsASentence() {
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_LOCK_TTL": "abc"]) }
        #expect(e?.description.hasPrefix("lock-ttl: \"abc\" is not a duration in seconds") == true)
    }

    @Test func shutdownGraceMayBeZeroButGapTimeoutMayNot() throws {
        #expect(try load(flags: ["shutdown-grace": "0"]).shutdownGrace == .zero)
        let e = error { () throws(ConfigurationError) in try load(flags: ["gap-timeout": "0"]) }
        #expect(e?.option == "gap-timeout" && e?.source == .flag("gap-timeout"))
        #expect(e?.description.contains("(from --gap-timeout)") == true)
    }

    @Test func millisecondOptionsTakeWholeNumbers() throws {
        #expect(try load(yaml: "block-ms: 0\nwork-ms: 25").workTime == .milliseconds(25))
        let e = error { () throws(ConfigurationError) in try load(yaml: "block-ms: 1.5") }
        #expect(e?.option == "block-ms" && e?.source == .file(nil))
    }

    // MARK: claim-idle

    @Test func claimIdleFollowsLockTTLUnlessSet() throws {
        #expect(try load(flags: ["lock-ttl": "30"]).claimIdle == .seconds(60))
        #expect(try load(yaml: "lock-ttl: 1.5").claimIdle == .seconds(3))
        let c = try load(env: ["SG_LOCK_TTL": "20", "SG_CLAIM_IDLE": "45"])
        #expect(c.claimIdle == .seconds(45))
    }

    @Test func claimIdleBelowTwiceTheLockTTLNamesClaimIdle() {
        let e = error { () throws(ConfigurationError) in
            try load(flags: ["lock-ttl": "10"], env: ["SG_CLAIM_IDLE": "15"])
        }
        #expect(e?.option == "claim-idle")
        #expect(e?.source == .environment("SG_CLAIM_IDLE"))
        #expect(e?.description.hasPrefix("claim-idle: 15s is less than 2 x lock-ttl (20s)") == true)
    }

    // MARK: Errors

    @Test func anUnknownKeyInTheFileNamesTheKey() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "lock-tll: 5") }
        #expect(e == .unknownKey("lock-tll", suggestion: "lock-ttl", source: .file(nil)))
        #expect(e?.description.contains("\"lock-tll\"") == true)
        #expect(e?.description.contains("did you mean \"lock-ttl\"") == true)
    }

    @Test func aFarOffUnknownKeyGetsNoSuggestion() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "colour: blue") }
        #expect(e == .unknownKey("colour", suggestion: nil, source: .file(nil)))
        #expect(e?.description.contains("did you mean") == false)
    }

    @Test func anUnknownFlagIsAnError() {
        let e = error { () throws(ConfigurationError) in try load(flags: ["batchh": "1"]) }
        #expect(e == .unknownKey("batchh", suggestion: "batch", source: .flag("batchh")))
    }

    @Test(arguments: [
        ("concurrency", "0"), ("batch", "-3"), ("max-deliveries", "many"), ("history-max", "1.5"),
        ("max-entry-bytes", "0"), ("handler", "echo"), ("log-level", "loud"), ("key-prefix", "a b"),
        ("group", ""), ("channel-field", " "), ("log-format", "xml"), ("metrics-port", "65536"),
        ("metrics-port", "-1"), ("metrics-port", "http"), ("metrics-host", ""), ("metrics-host", "a b"),
    ])
    func aBadValueNamesTheOptionValueAndSource(option: String, value: String) {
        let e = error { () throws(ConfigurationError) in try load(flags: [option: value]) }
        #expect(e?.option == option)
        #expect(e?.source == .flag(option))
        #expect(e?.description.hasPrefix("\(option): \"") == true)
        #expect(e?.description.hasSuffix("(from --\(option))") == true)
    }

    @Test func handlerAndLogLevelErrorsListTheChoices() throws {
        let e = error { () throws(ConfigurationError) in try load(yaml: "log-level: loud") }
        #expect(e?.description.contains("one of trace, debug, info, notice, warning, error, critical") == true)
        let h = error { () throws(ConfigurationError) in try load(yaml: "handler: echo") }
        #expect(h?.description.contains("one of history, http") == true)
        #expect(try load(env: ["SG_LOG_LEVEL": "WARNING"]).logLevel == .warning)
    }

    @Test(arguments: [
        "http://localhost", "redis://", "redis://:pw@", "redis://host:0", "redis://host:99999",
        "redis://host/x", "unix://", "unix://relative.sock", "rediss://", "rediss://host:0", "localhost:6379", "redis://a b",
    ])
    func aBadURLNamesRedisURL(url: String) {
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_REDIS_URL": url]) }
        #expect(e?.option == "redis-url")
        #expect(e?.source == .environment("SG_REDIS_URL"))
        #expect(e?.description.hasPrefix("redis-url: ") == true)
    }

    @Test(arguments: ["redis://localhost", "redis://u:p@10.0.0.1:6380/2", "redis://[::1]:6390", "unix:///run/r.sock?db=1"])
    func goodURLsLoad(url: String) throws {
        // From the environment, where a URL may carry its password.
        #expect(try load(env: ["SG_REDIS_URL": url]).redisURL == url)
    }

    @Test func aBadURLErrorHidesThePassword() {
        let e = error { () throws(ConfigurationError) in try load(flags: ["redis-url": "http://user:hunter2@host"]) }
        #expect(e?.description.contains("hunter2") == false)
        #expect(e?.description.contains("user:***@host") == true)
    }

    @Test func aMissingConfigFileNamesThePath() {
        let e = error { () throws(ConfigurationError) in
            try WorkerConfiguration.load(flags: [:], environment: [:], file: "/nonexistent/worker.yaml")
        }
        #expect(e == .missingFile(option: "config", path: "/nonexistent/worker.yaml", source: .flag("config")))
        #expect(e?.description.contains("/nonexistent/worker.yaml") == true)
    }

    @Test func sgConfigNamesTheFileWhenNoneIsGiven() throws {
        let path = try temporaryFile("batch: 7\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try WorkerConfiguration.load(flags: [:], environment: ["SG_CONFIG": path], file: nil)
        #expect(c.batch == 7)
        let e = error { () throws(ConfigurationError) in
            try WorkerConfiguration.load(flags: [:], environment: ["SG_CONFIG": path + ".gone"], file: nil)
        }
        #expect(e?.source == .environment("SG_CONFIG"))
    }

    @Test func fileErrorsNameTheFilePath() throws {
        let path = try temporaryFile("batchsize: 7\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let e = error { () throws(ConfigurationError) in
            try WorkerConfiguration.load(flags: [:], environment: [:], file: path)
        }
        #expect(e == .unknownKey("batchsize", suggestion: nil, source: .file(path)))
        #expect(e?.description.contains(path) == true)
    }

    @Test func invalidYAMLCarriesTheParserMessage() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "batch: [1, 2\n") }
        guard case .invalidYAML(let message, let source)? = e else {
            Issue.record("expected invalidYAML, got \(String(describing: e))")
            return
        }
        #expect(source == .file(nil))
        #expect(message.contains("parser") || message.contains("scanner"))
        #expect(e?.description.hasPrefix("config: ") == true)
    }

    @Test func aYAMLFileThatIsNotAMappingIsInvalid() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "- a\n- b\n") }
        #expect(e?.option == "config")
        #expect(e?.description.contains("mapping") == true)
    }

    @Test func aKeyTwiceInTheFileIsInvalid() {
        let e = error { () throws(ConfigurationError) in try load(yaml: "batch: 1\nbatch: 2\n") }
        #expect(e?.description.contains("\"batch\" appears more than once") == true)
    }

    // MARK: Passwords

    @Test func thePasswordComesFromTheEnvironment() throws {
        let c = try load(env: ["SG_REDIS_PASSWORD": "s3cret"])
        #expect(c.redisPassword == "s3cret" && c.redisPasswordFile == nil)
    }

    @Test func thePasswordFileIsReadWithoutItsTrailingNewline() throws {
        let path = try temporaryFile("s3cret\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = try load(yaml: "redis-password-file: \(path)")
        #expect(c.redisPassword == "s3cret" && c.redisPasswordFile == path)
    }

    @Test func passwordSourcesFollowThePrecedence() throws {
        let path = try temporaryFile("from-file")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // A flag naming a file beats the environment's password...
        #expect(try load(flags: ["redis-password-file": path], env: ["SG_REDIS_PASSWORD": "pw-env"]).redisPassword == "from-file")
        // ...and the environment's password beats a file named in the config file.
        #expect(try load(env: ["SG_REDIS_PASSWORD": "pw-env"], yaml: "redis-password-file: \(path)").redisPassword == "pw-env")
        // Both in the environment is ambiguous.
        let e = error { () throws(ConfigurationError) in
            try load(env: ["SG_REDIS_PASSWORD": "pw-env", "SG_REDIS_PASSWORD_FILE": path])
        }
        #expect(e?.option == "redis-password-file")
        #expect(e?.description.contains("SG_REDIS_PASSWORD and SG_REDIS_PASSWORD_FILE") == true)
        #expect(e?.description.contains("pw-env") == false && e?.description.contains("from-file") == false)
    }

    @Test func aPasswordFlagOrFileKeyIsRefused() {
        let flag = error { () throws(ConfigurationError) in try load(flags: ["redis-password": "hunter2"]) }
        #expect(flag == .passwordNotAccepted(source: .flag("redis-password")))
        #expect(flag?.description.contains("hunter2") == false)
        let file = error { () throws(ConfigurationError) in try load(yaml: "redis-password: hunter2") }
        #expect(file == .passwordNotAccepted(source: .file(nil)))
    }

    @Test func aMissingPasswordFileNamesThePathAndSource() {
        let e = error { () throws(ConfigurationError) in
            try load(env: ["SG_REDIS_PASSWORD_FILE": "/nonexistent/secret"])
        }
        #expect(e == .missingFile(
            option: "redis-password-file", path: "/nonexistent/secret", source: .environment("SG_REDIS_PASSWORD_FILE")))
        #expect(e?.description == "redis-password-file: file \"/nonexistent/secret\" does not exist (from SG_REDIS_PASSWORD_FILE)")
    }

    @Test func anUnreadablePasswordFileNamesThePath() throws {
        let empty = try temporaryFile("\n")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let e = error { () throws(ConfigurationError) in try load(flags: ["redis-password-file": empty]) }
        #expect(e == .unreadableFile(option: "redis-password-file", path: empty, reason: "it is empty", source: .flag("redis-password-file")))
        let dir = FileManager.default.temporaryDirectory.path
        let d = error { () throws(ConfigurationError) in try load(flags: ["redis-password-file": dir]) }
        #expect(d?.option == "redis-password-file")
        #expect(d?.description.contains(dir) == true)
    }

    @Test func aPasswordInTheURLIsRefusedFromTheCommandLineAndTheFile() throws {
        for url in ["redis://worker:hunter2@host:6379/0", "redis://:hunter2@host", "unix:///run/r.sock?db=1&password=hunter2"] {
            let flag = error { () throws(ConfigurationError) in try load(flags: ["redis-url": url]) }
            #expect(flag == .passwordNotAccepted(source: .flag("redis-url")), "\(url)")
            #expect(flag?.description.contains("hunter2") == false)
            let file = error { () throws(ConfigurationError) in try load(yaml: "redis-url: \"\(url)\"") }
            #expect(file == .passwordNotAccepted(source: .file(nil)), "\(url)")
            #expect(try load(env: ["SG_REDIS_URL": url]).redisURL == url)
        }
        // A user name alone is no secret.
        #expect(try load(flags: ["redis-url": "redis://worker@host:6379"]).redisURL == "redis://worker@host:6379")
    }

    @Test func redactedDescriptionHidesPasswords() throws {
        var c = try load(env: ["SG_REDIS_URL": "redis://worker:hunter2@host:6379/0", "SG_REDIS_PASSWORD": "s3cret"])
        #expect(c.redisPassword == "s3cret")
        for text in [c.redactedDescription, c.description, String(reflecting: c), "\(c)"] {
            #expect(!text.contains("hunter2") && !text.contains("s3cret"))
        }
        var dumped = ""
        dump(c, to: &dumped)
        #expect(!dumped.contains("hunter2") && !dumped.contains("s3cret"))
        #expect(c.redactedDescription.contains("redis-url: redis://worker:***@host:6379/0"))
        #expect(c.redactedDescription.contains("redis-password: ***"))
        #expect(c.redactedDescription.contains("lock-ttl: 10s"))
        c.redisURL = "unix:///run/r.sock?password=hunter2&db=1"
        #expect(c.redactedDescription.contains("unix:///run/r.sock?password=***&db=1"))
    }

    // MARK: The http handler

    @Test func theHTTPHandlerTakesItsURLAndTimeoutFromEveryLayer() throws {
        let fromFile = try load(yaml: "handler: http\nhandler-url: http://infer:8080/v1/handle\nhandler-timeout: 2.5\n")
        #expect(fromFile.handler == .http && fromFile.handlerURL == "http://infer:8080/v1/handle")
        #expect(fromFile.handlerTimeout == .milliseconds(2500))
        let fromEnv = try load(env: ["SG_HANDLER": "HTTP", "SG_HANDLER_URL": "https://h/x", "SG_HANDLER_TIMEOUT": "500ms"])
        #expect(fromEnv.handler == .http && fromEnv.handlerURL == "https://h/x" && fromEnv.handlerTimeout == .milliseconds(500))
        let fromFlags = try load(
            flags: ["handler": "http", "handler-url": "http://a/", "handler-timeout": "30"], env: ["SG_HANDLER_URL": "http://b/"])
        #expect(fromFlags.handlerURL == "http://a/" && fromFlags.handlerTimeout == .seconds(30))
    }

    @Test func theHTTPHandlerWithoutAURLNamesHandlerURL() {
        let e = error { () throws(ConfigurationError) in try load(flags: ["handler": "http"]) }
        #expect(e?.option == "handler-url")
        #expect(e?.source == .flag("handler"))
        #expect(e?.description.contains("handler http needs handler-url") == true)
    }

    @Test func aHandlerURLWithoutTheHTTPHandlerIsAConflict() {
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_HANDLER_URL": "http://h/"]) }
        #expect(e?.option == "handler-url")
        #expect(e?.source == .environment("SG_HANDLER_URL"))
        #expect(e?.description.contains("handler is history") == true)
    }

    @Test(arguments: ["ftp://h/x", "http://", "h:8080/x", "http://a b/", "/relative", "redis://h"])
    func aBadHandlerURLNamesTheOption(url: String) {
        let e = error { () throws(ConfigurationError) in try load(flags: ["handler": "http", "handler-url": url]) }
        #expect(e?.option == "handler-url")
        #expect(e?.source == .flag("handler-url"))
        #expect(e?.description.hasPrefix("handler-url: ") == true)
    }

    @Test(arguments: ["0", "-1", "soon"])
    func aBadHandlerTimeoutNamesTheOption(value: String) {
        let e = error { () throws(ConfigurationError) in
            try load(flags: ["handler": "http", "handler-url": "http://h/", "handler-timeout": value])
        }
        #expect(e?.option == "handler-timeout")
    }

    @Test func handlerURLCredentialsAreRedacted() throws {
        let c = try load(flags: ["handler": "http", "handler-url": "https://bot:t0ken@h/hook"])
        #expect(c.handlerURL == "https://bot:t0ken@h/hook")
        var dumped = ""
        dump(c, to: &dumped)
        for text in [c.redactedDescription, "\(c)", dumped] { #expect(!text.contains("t0ken")) }
        #expect(c.redactedDescription.contains("handler-url: https://***@h/hook"))
        let e = error { () throws(ConfigurationError) in
            try load(flags: ["handler": "http", "handler-url": "gopher://bot:t0ken@h/hook"])
        }
        #expect(e?.description.contains("t0ken") == false)
    }

    @Test func theMetricsPortIsOffUnlessSetAndFollowsThePrecedence() throws {
        #expect(try load().metricsPort == nil)
        #expect(try load(yaml: "metrics-port: 9100").metricsPort == 9100)
        #expect(try load(env: ["SG_METRICS_PORT": "9200"], yaml: "metrics-port: 9100").metricsPort == 9200)
        #expect(try load(flags: ["metrics-port": "0"], env: ["SG_METRICS_PORT": "9200"]).metricsPort == 0)
        #expect(try load(env: ["SG_METRICS_PORT": ""], yaml: "metrics-port:").metricsPort == nil)
    }

    /// What `sgctl health` resolves: the same precedence as the whole configuration, and nothing
    /// else read, so a password file that is gone does not make a healthy worker unhealthy.
    @Test func theOperatorAddressResolvesAsTheConfigurationDoesAndReadsNothingElse() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-address-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let yaml = directory.appendingPathComponent("worker.yaml").path
        try "metrics-port: 9100\nmetrics-host: 0.0.0.0\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        let gone = ["redis-password-file": directory.appendingPathComponent("gone").path]
        let fromFile = try WorkerConfiguration.operatorAddress(flags: gone, environment: ["SG_CONFIG": yaml], file: nil)
        #expect(fromFile.port == 9100 && fromFile.host == "0.0.0.0")
        let flagged = try WorkerConfiguration.operatorAddress(
            flags: ["metrics-port": "9300"], environment: ["SG_METRICS_PORT": "9200", "SG_METRICS_HOST": "::"], file: yaml)
        #expect(flagged.port == 9300 && flagged.host == "::")
        let none = try WorkerConfiguration.operatorAddress(flags: [:], environment: [:], file: nil)
        #expect(none.port == nil && none.host == "127.0.0.1")
        #expect(throws: ConfigurationError.self) {
            try WorkerConfiguration.load(flags: gone, environment: ["SG_CONFIG": yaml], file: nil)
        }
    }

    @Test func aBadMetricsPortSaysWhichPortsAreAllowed() {
        let e = error { () throws(ConfigurationError) in try load(env: ["SG_METRICS_PORT": "70000"]) }
        #expect(e?.description == "metrics-port: \"70000\" is not an integer in 0...65535 (from SG_METRICS_PORT)")
    }

    @Test func theLogFormatIsTextOrJSONFromAnySource() throws {
        #expect(try load(yaml: "log-format: json").logFormat == .json)
        #expect(try load(env: ["SG_LOG_FORMAT": "JSON"], yaml: "log-format: text").logFormat == .json)
        #expect(try load(flags: ["log-format": "text"], env: ["SG_LOG_FORMAT": "json"]).logFormat == .text)
        let e = error { () throws(ConfigurationError) in try load(flags: ["log-format": "xml"]) }
        #expect(e?.description.contains("one of text, json") == true)
    }

    @Test func theStartupSummaryIsOneRedactedLineWithEveryOption() throws {
        let c = try load(
            flags: ["consumer": "worker \"one\"", "metrics-port": "9100"],
            env: ["SG_REDIS_URL": "redis://worker:hunter2@host:6379/0", "SG_REDIS_PASSWORD": "s3cret"])
        let summary = c.redactedSummary
        #expect(!summary.contains("\n"))
        #expect(!summary.contains("hunter2") && !summary.contains("s3cret"))
        #expect(summary.hasPrefix("redis-url=redis://worker:***@host:6379/0 redis-password=*** "))
        #expect(summary.contains(" consumer=\"worker \\\"one\\\"\" "))
        #expect(summary.contains(" metrics-port=9100 "))
        for name in WorkerConfiguration.optionNames {
            #expect(summary.contains("\(name)="), "summary lacks \(name)")
        }
    }

    // MARK: The shipped defaults file

    @Test func theShippedWorkerYAMLLoadsAndMatchesTheDefaults() throws {
        let path = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Config/worker.yaml").path
        var c = try WorkerConfiguration.load(flags: [:], environment: [:], file: path)
        #expect(c.consumer == WorkerConfiguration.defaults.consumer, "consumer should stay commented out")
        c.consumer = WorkerConfiguration.defaults.consumer
        #expect(c == .defaults)
        // Every option is documented, even those left commented out.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for name in WorkerConfiguration.optionNames {
            #expect(text.contains("\(name):"), "worker.yaml does not mention \(name)")
        }
    }
}
