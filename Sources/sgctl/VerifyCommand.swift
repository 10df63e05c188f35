import ArgumentParser
import Foundation
import RedisClient
import StreamWorker

/// Checks what the pool committed: every channel's history must hold seqs 1…n, each once, in order.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check per-channel histories for duplicates, gaps and out-of-order entries."
    )

    @OptionGroup var redis: RedisOptions
    @Option(help: "Key prefix.") var keyPrefix = "sg"
    @Flag(help: "Print one JSON object line.") var json = false

    func run() async throws {
        let client = try redis.client()
        defer { client.close() }
        let report = try await HistoryReport.collect(client: client, keys: WorkerKeys(prefix: keyPrefix))
        if json {
            printJSONLine(report.json)
        } else {
            print(report.summary)
        }
        if !report.ok { throw ExitCode(1) }
    }
}

/// Per-channel history check shared by `verify` and `bench worker`.
struct HistoryReport {
    var channels = 0, entries = 0, outOfOrder = 0, duplicates = 0, missing = 0

    var ok: Bool { outOfOrder + duplicates == 0 }
    var json: [String: Any] {
        ["channels": channels, "entries": entries, "out_of_order": outOfOrder, "duplicates": duplicates, "missing": missing]
    }
    var summary: String {
        "channels \(channels), entries \(entries), out of order \(outOfOrder), duplicates \(duplicates), missing seqs \(missing)"
    }

    static func collect(client: RedisClient, keys: WorkerKeys) async throws -> HistoryReport {
        var report = HistoryReport()
        var cursor = "0"
        var channels = 0, entries = 0, outOfOrder = 0, duplicates = 0, missing = 0
        repeat {
            let reply = try await client.send("SCAN", cursor, "MATCH", keys.history(channel: "*"), "COUNT", 500)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
            cursor = next
            for key in parts[1].array?.compactMap(\.string) ?? [] {
                report.channels += 1
                let history = try await client.send("LRANGE", key, 0, -1).array ?? []
                var last: Int64 = 0
                var seen = Set<Int64>()
                for item in history {
                    report.entries += 1
                    guard let data = item.bytes, let object = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any],
                          let seq = (object["seq"] as? NSNumber)?.int64Value else { continue }
                    if !seen.insert(seq).inserted { report.duplicates += 1 }
                    else if seq < last { report.outOfOrder += 1 }
                    else if seq > last + 1 { report.missing += Int(seq - last - 1) }
                    last = max(last, seq)
                }
            }
        } while cursor != "0"
        return report
    }
}
