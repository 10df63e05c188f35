import Foundation
import RedisClient
import StreamTools
import StreamWorker
import TestSupport
import Testing

/// Export, import, copy and reset against a real Redis.
@Suite struct ReplayTests {
    /// Entries with text, binary values, a binary name, a repeated name and every byte value.
    static func fill(_ client: RedisClient, _ stream: String, count: Int) async throws -> [String] {
        var ids: [String] = []
        for i in 0..<count {
            var command = RedisCommand("XADD", stream, "*", "channel_id", "c\(i % 3)", "seq", String(i + 1), "text", "entry \(i) ü\n\"q\"")
            command.append(Array("blob".utf8))
            command.append((0...255).map(UInt8.init) + [UInt8(i % 256)])
            command.append([0xC3, 0x28, UInt8(i % 256)])
            command.append([0xFF, 0xFE])
            command.append("text")
            command.append("repeated name")
            command.append("empty")
            command.append("")
            ids.append(try await client.send(command).string ?? "")
        }
        return ids
    }

    static func export(_ client: RedisClient, _ stream: String, _ range: EntryRange = .all) async throws -> [String] {
        var lines: [String] = []
        try await StreamRangeReader(client: client, stream: stream, pageSize: 7).forEachPage(range) { lines += $0.map(EntryCodec.encode) }
        return lines
    }

    static func importLines(_ lines: [String], into stream: String, client: RedisClient, mode: IDMode = .keep, dryRun: Bool = false) async throws -> ImportSummary {
        var run = ReplayRun(importer: StreamImporter(client: client, stream: stream, mode: mode, dryRun: dryRun), pacer: try Pacer(), batchSize: 5)
        for (n, line) in lines.enumerated() {
            if let entry = try EntryCodec.decode(Array(line.utf8), lineNumber: n + 1) { try await run.feed([entry]) }
        }
        return try await run.finish()
    }

    static func entries(_ client: RedisClient, _ stream: String, _ start: String = "-", _ end: String = "+") async throws -> RESPValue {
        try await client.send("XRANGE", stream, start, end)
    }

    @Test func exportThenImportReproducesEveryEntryByteForByte() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        _ = try await Self.fill(client, source, count: 40)
        let lines = try await Self.export(client, source)
        #expect(lines.count == 40)
        let summary = try await Self.importLines(lines, into: target, client: client)
        #expect(summary.added == 40)
        #expect(summary.complete)
        let original = try await Self.entries(client, source)
        #expect(original.array?.count == 40)
        #expect(try await Self.entries(client, target) == original)
    }

    @Test func importingTheSameEntriesAgainReportsAndSkipsEveryId() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        _ = try await Self.fill(client, source, count: 12)
        let lines = try await Self.export(client, source)
        _ = try await Self.importLines(lines, into: target, client: client)
        let again = try await Self.importLines(lines, into: target, client: client)
        #expect(again.read == 12)
        #expect(again.added == 0)
        #expect(again.alreadyPresent == 12)
        #expect(again.complete)
        // Twelve "already present" lines would bury anything else: they fold into one count.
        #expect(again.problems.isEmpty)
        let text = again.text(dryRun: false).split(separator: "\n")
        #expect(text.count == 2)
        #expect(text.last?.contains("12 already present, skipped") == true)
        #expect(try await client.send("XLEN", target).int == 12)
    }

    @Test func aMissingIdBelowTheLastIsReportedOutOfOrderRatherThanPresent() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        let ids = try await Self.fill(client, source, count: 6)
        let lines = try await Self.export(client, source)
        _ = try await Self.importLines(lines, into: target, client: client)
        try await client.send("XDEL", target, ids[2])
        let again = try await Self.importLines(lines, into: target, client: client)
        #expect(again.alreadyPresent == 5)
        #expect(again.outOfOrder == 1)
        #expect(!again.complete)
        #expect(again.problems.contains { $0.hasPrefix(ids[2]) && $0.contains("not present") })
        #expect(try await client.send("XLEN", target).int == 5)
    }

    @Test func newIdsAppendEveryTimeAndKeepTheFields() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        _ = try await Self.fill(client, source, count: 3)
        let lines = try await Self.export(client, source)
        _ = try await Self.importLines(lines, into: target, client: client, mode: .new)
        _ = try await Self.importLines(lines, into: target, client: client, mode: .new)
        let copied = try await Self.entries(client, target).array ?? []
        let original = try await Self.entries(client, source).array ?? []
        #expect(copied.count == 6)
        #expect(copied.map { $0.array?[1] } == (original + original).map { $0.array?[1] })
    }

    @Test func keepingIdsNeedsAnIdOnEveryEntry() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let target = TestRedis.uniqueKey()
        await #expect(throws: ImportError.self) {
            _ = try await Self.importLines([#"{"fields":{"a":"1"}}"#], into: target, client: client)
        }
        #expect(try await client.send("EXISTS", target).int == 0)
    }

    @Test func aDryRunPredictsWhatTheRealRunDoesAndWritesNothing() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey(), fresh = TestRedis.uniqueKey()
        let ids = try await Self.fill(client, source, count: 10)
        let lines = try await Self.export(client, source)
        _ = try await Self.importLines(Array(lines.prefix(6)), into: target, client: client)
        try await client.send("XDEL", target, ids[1])
        let before = try await Self.entries(client, target)

        let predicted = try await Self.importLines(lines, into: target, client: client, dryRun: true)
        #expect(try await Self.entries(client, target) == before)
        let freshPrediction = try await Self.importLines(lines, into: fresh, client: client, dryRun: true)
        #expect(try await client.send("EXISTS", fresh).int == 0)
        #expect(freshPrediction.added == 10)

        let actual = try await Self.importLines(lines, into: target, client: client)
        #expect(predicted == actual)
        #expect(actual.added == 4)
        #expect(actual.alreadyPresent == 5)
        #expect(actual.outOfOrder == 1)
    }

    @Test func aRangeIsCopiedFromOneServerToAnother() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let production = RedisClient(configuration: try server.configuration())
        let staging = try TestRedis.client()
        defer { production.close(); staging.close() }
        let stream = "orders", target = TestRedis.uniqueKey()
        let ids = try await Self.fill(production, stream, count: 20)
        let range = try EntryRange.parse(from: ids[4], to: ids[13], count: nil)
        var run = ReplayRun(importer: StreamImporter(client: staging, stream: target, mode: .keep, dryRun: false), pacer: try Pacer(), batchSize: 4)
        try await StreamRangeReader(client: production, stream: stream, pageSize: 3).forEachPage(range) { try await run.feed($0) }
        let summary = try await run.finish()
        #expect(summary.added == 10)
        #expect(try await Self.entries(staging, target) == Self.entries(production, stream, ids[4], ids[13]))
    }

    @Test func pacedImportsKeepTheirOrder() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let source = TestRedis.uniqueKey(), target = TestRedis.uniqueKey()
        _ = try await Self.fill(client, source, count: 8)
        var run = ReplayRun(importer: StreamImporter(client: client, stream: target, mode: .new, dryRun: false), pacer: try Pacer(rate: 400), batchSize: 3)
        try await StreamRangeReader(client: client, stream: source).forEachPage(.all) { try await run.feed($0) }
        _ = try await run.finish()
        let fields = { (stream: String) async throws -> [RESPValue?] in try await Self.entries(client, stream).array?.map { $0.array?[1] } ?? [] }
        #expect(try await fields(target) == fields(source))
    }

    @Test func aResetCountsTheEntriesItRedeliversAndTheyAreDeliveredAgain() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        let ids = try await Self.fill(client, stream, count: 10)
        try await client.send("XGROUP", "CREATE", stream, "g", "0")
        _ = try await client.send("XREADGROUP", "GROUP", "g", "c", "COUNT", 7, "STREAMS", stream, ">")
        let reset = GroupReset(client: client, stream: stream, group: "g")

        let back = try await reset.plan(to: .id(StreamID(ids[2])!))
        #expect(back.redelivered == 4)
        #expect(back.skipped == 0)
        #expect(try await Self.lastDelivered(client, stream) == ids[6])
        try await reset.apply(back)
        #expect(try await Self.lastDelivered(client, stream) == ids[2])
        #expect(try await Self.lag(client, stream) == 7)
        let again = try await client.send("XREADGROUP", "GROUP", "g", "c", "STREAMS", stream, ">")
        #expect(again.array?.first?.array?[1].array?.compactMap { $0.array?.first?.string } == Array(ids[3...]))

        let toStart = try await reset.plan(to: .beginning)
        #expect(toStart.redelivered == 10)
        try await client.send("XGROUP", "SETID", stream, "g", ids[4])
        let forward = try await reset.plan(to: .end)
        #expect(forward.redelivered == 0)
        #expect(forward.skipped == 5)
        try await reset.apply(forward)
        #expect(try await Self.lag(client, stream) == 0)
    }

    @Test func resettingAMissingGroupOrStreamFailsWithItsName() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        await #expect(throws: ResetError.self) { try await GroupReset(client: client, stream: stream, group: "g").plan(to: .beginning) }
        _ = try await Self.fill(client, stream, count: 1)
        do {
            _ = try await GroupReset(client: client, stream: stream, group: "nope").plan(to: .beginning)
            Issue.record("planned a reset of a missing group")
        } catch let error as ResetError {
            #expect(error.description.contains("'nope'"))
        }
    }

    static func groupInfo(_ client: RedisClient, _ stream: String) async throws -> [String: RESPValue] {
        let flat = try await client.send("XINFO", "GROUPS", stream).array?.first?.array ?? []
        var info: [String: RESPValue] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) { info[flat[i].string ?? ""] = flat[i + 1] }
        return info
    }

    static func lastDelivered(_ client: RedisClient, _ stream: String) async throws -> String? {
        try await groupInfo(client, stream)["last-delivered-id"]?.string
    }

    static func lag(_ client: RedisClient, _ stream: String) async throws -> Int64? {
        try await groupInfo(client, stream)["lag"]?.int
    }
}
