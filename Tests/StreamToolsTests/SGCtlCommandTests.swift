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
    func sgctl(_ arguments: [String], stdin: String = "/dev/null") async throws -> (status: Int32, output: String) {
        let log = directory.appendingPathComponent("\(UUID().uuidString).log").path
        let process = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" < \"$SGCTL_STDIN\"", builtProductPath("sgctl")] + arguments,
                                       stdout: log, environment: ["SGCTL_STDIN": stdin])
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
        let process = try ChildProcess(builtProductPath("sgctl"), arguments, stdout: log, environment: ["SG_REDIS_URL": try TestRedis.url()])
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
