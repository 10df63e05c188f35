import Foundation
import RedisClient
import StreamTools
import StreamWorker
import TestSupport
import Testing

struct CommandDidNotFinish: Error {}

/// The built `sgctl` binary, run as a child process with stdin on /dev/null (not a terminal).
/// Serialized: a burst of debug-binary start-ups on a small machine starves the timing-sensitive
/// lock tests that run alongside.
@Suite(.serialized) struct SGCtlCommandTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sgctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// Runs sgctl with `stdin` (a file path) as its standard input.
    /// The classic layout unless the test says otherwise (`--partitions` or `environment`).
    func sgctl(_ arguments: [String], stdin: String = "/dev/null", environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let log = directory.appendingPathComponent("\(UUID().uuidString).log").path
        let process = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" < \"$SGCTL_STDIN\"", builtProductPath("sgctl")] + arguments,
                                       stdout: log, environment: ["SGCTL_STDIN": stdin, "SG_PARTITIONS": "1"].merging(environment) { $1 })
        guard let status = await process.wait(timeout: .seconds(120)) else {
            process.killNow()
            Issue.record("sgctl \(arguments.joined(separator: " ")) did not finish")
            throw CommandDidNotFinish()
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// The last line of output that is a JSON object.
    func json(_ output: String) throws -> JSONValue {
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
        return try JSONParser.parse(String(line))
    }

    @Test func theBinaryExportsAFileImportsItAndSkipsEveryIdTheSecondTime() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        _ = try await ReplayTests.fill(client, source, count: 25)
        let file = directory.appendingPathComponent("export.jsonl").path

        let export = try await sgctl(["replay", "export", "--redis-url", url, "--stream", source, "--output", file, "--quiet"])
        #expect(export.status == 0, "\(export.output)")
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 25)

        // Its own key prefix: importing seqs checks (and raises) the target's seq counters.
        let first = try await sgctl(["replay", "import", "--redis-url", url, "--stream", target, "--key-prefix", target, file, "--json", "--quiet"])
        #expect(first.status == 0, "\(first.output)")
        #expect(try json(first.output)["added"] == .integer(25))
        #expect(try await client.send("XRANGE", target, "-", "+") == client.send("XRANGE", source, "-", "+"))

        // The second time from stdin.
        let second = try await sgctl(["replay", "import", "--redis-url", url, "--stream", target, "--key-prefix", target, "--json", "-q"], stdin: file)
        #expect(second.status == 0, "\(second.output)")
        #expect(try json(second.output)["already_present"] == .integer(25))
        #expect(try json(second.output)["added"] == .integer(0))
        #expect(try await client.send("XLEN", target).int == 25)
    }

    @Test func aBadLineStopsTheImportNamingTheLine() async throws {
        let url = try TestRedis.url()
        let file = directory.appendingPathComponent("bad.jsonl").path
        try "{\"fields\":{\"a\":\"1\"}}\n{\"fields\": 3}\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await sgctl(["replay", "import", "--redis-url", url, "--stream", TestRedis.uniqueKey(), "--ids", "new", file, "--quiet"])
        #expect(result.status == 1)
        #expect(result.output.contains("line 2: \"fields\" must be an object"), "\(result.output)")
        #expect(result.output.contains("the 1 entries before it were handled (1 added"), "\(result.output)")
        #expect(!result.output.contains("Usage:"))
    }

    @Test func resetOffATerminalNeedsYesAndADryRunOnlyCounts() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        let ids = try await ReplayTests.fill(client, stream, count: 6)
        try await client.send("XGROUP", "CREATE", stream, "g", "$")
        let base = ["replay", "reset", "--redis-url", url, "--stream", stream, "--group", "g", "--to", ids[1]]

        let refused = try await sgctl(base)
        #expect(refused.status == 1)
        #expect(refused.output.contains("4 entries will be redelivered"), "\(refused.output)")
        #expect(refused.output.contains("--yes"))
        #expect(try await ReplayTests.lastDelivered(client, stream) == ids[5])

        let dryRun = try await sgctl(base + ["--dry-run", "--json"])
        #expect(dryRun.status == 0, "\(dryRun.output)")
        #expect(try json(dryRun.output)["redelivered"] == .integer(4))
        #expect(try json(dryRun.output)["applied"] == .bool(false))
        #expect(try await ReplayTests.lastDelivered(client, stream) == ids[5])

        let confirmed = try await sgctl(base + ["--yes", "--json"])
        #expect(confirmed.status == 0, "\(confirmed.output)")
        #expect(try json(confirmed.output)["applied"] == .bool(true))
        #expect(try await ReplayTests.lastDelivered(client, stream) == ids[1])
    }

    @Test func dlqRequeueDryRunWritesNothingAndTheRealRunMovesTheLetter() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("cli"))
        let stream = keys.prefix + ":in"
        try await DeadLetterQueueTests.deadLetter(client, keys: keys, stream: stream,
            fields: [StreamField("channel_id", "c"), StreamField("seq", "1"), StreamField("text", "x")], reason: "max_deliveries")
        let dead = WorkerKeys.deadLetters(of: stream)
        let before = try await client.send("XRANGE", dead, "-", "+")
        let base = ["dlq", "requeue", "--redis-url", url, "--stream", stream, "--key-prefix", keys.prefix, "--all", "--json"]

        let dryRun = try await sgctl(base + ["--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun.output)")
        #expect(try json(dryRun.output)["would_requeue"] == .integer(1))
        #expect(try await client.send("XRANGE", dead, "-", "+") == before)
        #expect(try await client.send("XLEN", stream).int == 0)
        #expect(try await client.send("EXISTS", dead + ":requeued", keys.seq(channel: "c")).int == 0)

        let real = try await sgctl(base)
        #expect(real.status == 0, "\(real.output)")
        #expect(try json(real.output)["requeued"] == .integer(1))
        #expect(try await client.send("XLEN", dead).int == 0)
        #expect(try await client.send("XLEN", stream).int == 1)

        let listed = try await sgctl(["dlq", "list", "--redis-url", url, "--stream", stream, "--json"])
        #expect(try json(listed.output)["total"] == .integer(0))
    }

    /// produce → a partitioned worker → verify, inspect and dlq, all with `--partitions 4`.
    @Test func everyCommandFollowsThePartitionedLayout() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("parts"), partitions: 4)
        let stream = keys.prefix + ":in"
        let layout = ["--redis-url", url, "--key-prefix", keys.prefix, "--partitions", "4"]
        let produced = try await sgctl(["produce"] + layout + ["--stream", stream, "--messages", "80", "--channels", "8", "--json"])
        #expect(produced.status == 0, "\(produced.output)")
        #expect(try await client.send("EXISTS", stream).int == 0, "nothing goes to the unpartitioned name")
        for p in [0, 2] { try await client.send("XADD", keys.stream(stream, partition: p), "*", "text", "no channel") }
        let log = directory.appendingPathComponent("worker.log").path
        let worker = try ChildProcess(builtProductPath("stream-consumer"), layout + [
            "--stream", stream, "--group", "g", "--consumer", "parts-1", "--block-ms", "100", "--log-level", "warning",
        ], stdout: log)
        defer { worker.killNow() }
        try await waitUntil(timeout: .seconds(120)) {
            var pending: Int64 = 0, dead: Int64 = 0
            for s in keys.streams(stream) {
                pending += (try? await client.send("XPENDING", s, "g"))?.array?.first?.int ?? 1
                dead += try await client.send("XLEN", WorkerKeys.deadLetters(of: s)).int ?? 0
            }
            let verified = try await sgctl(["verify"] + layout + ["--stream", stream])
            return pending == 0 && dead == 2 && verified.status == 0
        }
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)

        let report = try json(try await sgctl(["verify"] + layout + ["--stream", stream, "--json"]).output)
        #expect(report["ok"] == .bool(true), "\(report)")
        let group = try json(try await sgctl(["inspect"] + layout + ["--stream", stream, "--group", "g", "--json"]).output)
        #expect(group["length"] == .integer(82))
        #expect(group["pending"] == .integer(0))
        guard case .array(let rows)? = group["partitions"], case .array(let letters)? = try json(try await sgctl(["dlq", "list"] + layout + ["--stream", stream, "--json"]).output)["dead_letters"] else {
            Issue.record("inspect or dlq list has no list: \(group)")
            return
        }
        #expect(rows.count == 4)
        #expect(rows.allSatisfy { $0["owner"] == .string("parts-1") }, "\(rows)")
        let dead = try json(try await sgctl(["dlq", "list"] + layout + ["--stream", stream, "--json"]).output)
        #expect(dead["total"] == .integer(2))
        #expect(Set(letters.compactMap { $0["partition"]?.int64Value }) == [0, 2])
    }

    /// sgctl takes the worker's `SG_TLS_*` variables where no flag is given.
    @Test func tlsSettingsComeFromTheWorkersVariables() async throws {
        let url = try TestTLS.url()
        let stream = TestRedis.uniqueKey("tls")
        let args = ["produce", "--redis-url", url, "--stream", stream, "--messages", "3", "--channels", "1", "--json"]
        let refused = try await sgctl(args + ["--tls-ca-file", try TestTLS.file("other-ca.crt")])
        #expect(refused.status != 0, "a wrong CA is refused")
        #expect(refused.output.contains("trusted CA"), "\(refused.output)")
        let accepted = try await sgctl(args, environment: ["SG_TLS_CA_FILE": try TestTLS.file("ca.crt")])
        #expect(accepted.status == 0, "\(accepted.output)")
        let flagWins = try await sgctl(args + ["--tls-ca-file", try TestTLS.file("other-ca.crt")],
                                       environment: ["SG_TLS_CA_FILE": try TestTLS.file("ca.crt")])
        #expect(flagWins.status != 0, "the flag comes before the variable")
        let halfPair = try await sgctl(args, environment: ["SG_TLS_CA_FILE": try TestTLS.file("ca.crt"), "SG_TLS_CERT_FILE": try TestTLS.file("client.crt")])
        #expect(halfPair.status == 64 && halfPair.output.contains("go together"), "\(halfPair.output)")
    }

    @Test func inspectReportsAsJSONThroughTheBinary() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        _ = try await ReplayTests.fill(client, stream, count: 4)
        try await client.send("XGROUP", "CREATE", stream, "g", "0")
        _ = try await client.send("XREADGROUP", "GROUP", "g", "w", "COUNT", 1, "STREAMS", stream, ">")
        let result = try await sgctl(["inspect", "--redis-url", url, "--stream", stream, "--group", "g", "--key-prefix", TestRedis.uniqueKey(), "--json"])
        #expect(result.status == 0, "\(result.output)")
        let report = try json(result.output)
        #expect(report["pending"] == .integer(1))
        #expect(report["lag"] == .integer(3))
        #expect(report["locks"] == .array([]))
    }

    @Test func tablesAndLinesEscapeWhatCouldDriveATerminalWhileJSONStaysExact() async throws {
        let url = try TestRedis.url()
        let client = try TestRedis.client()
        defer { client.close() }
        let keys = WorkerKeys(prefix: TestRedis.uniqueKey("esc"))
        let stream = keys.prefix + ":in"
        // A channel id that clears the screen and retitles the window, a fake row, a bidi override.
        let hostile = "a\u{1B}[2J\u{1B}]0;owned\u{07}\nfake row\u{202E}x\u{9B}"
        try await DeadLetterQueueTests.deadLetter(client, keys: keys, stream: stream,
            fields: [StreamField("channel_id", hostile), StreamField("text\r\n", "v\u{1B}[31m")], reason: "channel_control_characters")
        _ = try await client.send("HSET", keys.state(channel: hostile), "last_seq", "1", "note\u{1B}[1m", "x\u{7F}")
        let letter = try #require(try await DeadLetterQueue(client: client, stream: stream, keys: keys).list().first)
        let texts = [
            try await sgctl(["dlq", "list", "--redis-url", url, "--stream", stream]),
            try await sgctl(["dlq", "show", "--redis-url", url, "--stream", stream, letter.id]),
            try await sgctl(["inspect", "channel", "--redis-url", url, "--key-prefix", keys.prefix, hostile]),
        ]
        for text in texts {
            #expect(text.status == 0, "\(text.output)")
            let controls = text.output.unicodeScalars.filter { TerminalText.needsEscape($0) && $0 != "\n" }
            #expect(controls.isEmpty, "raw control characters in: \(text.output.debugDescription)")
            #expect(!text.output.contains("\nfake row"), "no line of its own")
        }
        #expect(texts[0].output.contains("a\\x1B[2J\\x1B]0;owned\\x07\\nfake row\\u{202E}x\\x9B"), "\(texts[0].output)")
        #expect(texts[1].output.contains("text\\r\\n = v\\x1B[31m"), "\(texts[1].output)")
        #expect(texts[2].output.contains("note\\x1B[1m = x\\x7F"), "\(texts[2].output)")

        // JSON carries the exact bytes (escaped the JSON way, so it decodes to the original).
        let listed = try json(try await sgctl(["dlq", "list", "--redis-url", url, "--stream", stream, "--json"]).output)
        guard case .array(let letters)? = listed["dead_letters"] else { Issue.record("no dead_letters in \(listed)"); return }
        #expect(letters.first?["fields"]?["channel_id"] == .string(hostile))
    }

    @Test func produceWaitsWhileRedisIsLoadingItsData() async throws {
        // 10,000 keys at 200 µs each: a few seconds of LOADING after the restart.
        let server = try await PrivateRedisServer(arguments: ["--key-load-delay", "200", "--loading-process-events-interval-bytes", "1024"])
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        for batch in 0..<10 {
            _ = try await client.pipeline((0..<1000).map { RedisCommand("SET", "key:\(batch):\($0)", "v") })
        }
        _ = try await client.send("SAVE")
        client.close()
        try await server.crashAndRestart(waitForData: false)
        let probe = RedisClient(configuration: try server.configuration())
        defer { probe.close() }
        var sawLoading = false
        do { _ = try await probe.send("PING") } catch let error as RedisError { sawLoading = error.serverCode == "LOADING" }
        #expect(sawLoading, "the test needs Redis to be loading when produce starts")

        let result = try await sgctl(["produce", "--redis-url", server.url, "--stream", "s", "--messages", "20", "--channels", "2", "--json"])
        #expect(result.status == 0, "\(result.output)")
        #expect(try json(result.output)["produced"] == .integer(20))
        #expect(try await probe.send("XLEN", "s").int == 20)
        #expect(try await probe.send("DBSIZE").int == 10_000 + 3, "the data set, the stream and two seq counters")
    }

    @Test func verifyFailsWhenItFindsNothingAndExportNamesAMissingStream() async throws {
        // The URL from the environment, as the worker takes it.
        let prefix = TestRedis.uniqueKey()
        let verify = try await sgctlWithURLFromEnvironment(["verify", "--key-prefix", prefix])
        #expect(verify.status == 1, "\(verify.output)")
        #expect(verify.output.contains("nothing to verify"), "\(verify.output)")
        let export = try await sgctlWithURLFromEnvironment(["replay", "export", "--stream", prefix + ":typo", "-q"])
        #expect(export.status == 1)
        #expect(export.output.contains("stream '\(prefix):typo' does not exist"), "\(export.output)")
    }

    func sgctlWithURLFromEnvironment(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let log = directory.appendingPathComponent("\(UUID().uuidString).log").path
        let process = try ChildProcess(builtProductPath("sgctl"), arguments, stdout: log, environment: ["SG_REDIS_URL": try TestRedis.url(), "SG_PARTITIONS": "1"])
        guard let status = await process.wait(timeout: .seconds(120)) else {
            process.killNow()
            throw CommandDidNotFinish()
        }
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test(arguments: [
        ["replay", "export"], ["replay", "import"], ["replay", "copy"], ["replay", "reset"],
        ["inspect", "group"], ["inspect", "channel"], ["dlq", "list"], ["dlq", "show"], ["dlq", "requeue"],
    ])
    func everySubcommandHasHelpAndTakesARedisURL(command: [String]) async throws {
        let result = try await sgctl(command + ["--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("--redis-url"), "\(result.output)")
        if ["import", "copy", "reset", "requeue"].contains(command[1]) {
            #expect(result.output.contains("--dry-run"))
        }
        if command[1] != "export" {
            #expect(result.output.contains("--json"))
        }
    }
}
