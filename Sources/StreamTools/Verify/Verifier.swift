import RedisClient
import StreamWorker

/// Reads what `sgctl verify` compares: per channel the producer's seq counter (or the stream's
/// own entries), the state, the history, and the dead letters; reads only.
public struct Verifier: Sendable {
    public let client: RedisClient
    public let keys: WorkerKeys
    /// The input stream; its dead letters are `<stream>:dead`. nil: no stream to compare with.
    public let stream: String?
    public let channelField: String
    public let historyMax: Int

    public init(client: RedisClient, keys: WorkerKeys, stream: String?, channelField: String = "channel_id", historyMax: Int = 100) {
        self.client = client
        self.keys = keys
        self.stream = stream
        self.channelField = channelField
        self.historyMax = historyMax
    }

    public func run() async throws -> VerifyReport {
        var records: [String: ChannelRecord] = [:]
        func record(_ channel: String, _ update: (inout ChannelRecord) -> Void) {
            update(&records[channel, default: ChannelRecord(channel: channel)])
        }
        // Discovery spells the layout out rather than asking WorkerKeys for a key of channel "":
        // with partitioned keys that would carry the tag of "" and miss every other partition.
        for kind in ["seq", "state", "history"] {
            for channel in try await channels(of: "\(keys.prefix):\(kind):channel:") { record(channel) { _ in } }
        }

        var report = VerifyReport()
        // With partitions, every partition stream of `stream`, each with its own dead letters.
        for partitionStream in stream.map(keys.streams) ?? [] {
            guard try await client.send("EXISTS", partitionStream).int == 1 else { continue }
            report.streamEntries = report.streamEntries ?? 0
            try await StreamRangeReader(client: client, stream: partitionStream, pageSize: 1000).forEachPage(.all) { page in
                report.streamEntries! += page.count
                for entry in page {
                    guard case let (channel, seq)? = entry.channelAndSeq(channelField: channelField) else { continue }
                    record(channel) { if let seq { $0.streamSeqs.append(seq) } }
                }
            }
            try await readDeadLetters(of: partitionStream, into: &records, report: &report)
        }

        let names = records.keys.sorted()
        for chunk in stride(from: 0, to: names.count, by: 100).map({ Array(names[$0..<min($0 + 100, names.count)]) }) {
            var commands: [RedisCommand] = []
            for channel in chunk {
                commands += [
                    RedisCommand("GET", keys.seq(channel: channel)),
                    RedisCommand("HMGET", keys.state(channel: channel), "last_seq", "count"),
                    RedisCommand("LRANGE", keys.history(channel: channel), 0, -1),
                ]
            }
            let replies = try await client.pipeline(commands)
            for (i, channel) in chunk.enumerated() {
                record(channel) { r in
                    if case .success(let counter) = replies[3 * i] { r.counter = counter.string.flatMap { Int64($0) } }
                    if case .success(let state) = replies[3 * i + 1], let values = state.array, values.count == 2 {
                        r.lastSeq = values[0].string.flatMap { Int64($0) }
                        r.count = values[1].string.flatMap { Int64($0) }
                    }
                    if case .success(let history) = replies[3 * i + 2] {
                        for item in history.array ?? [] {
                            let (entry, originalSeq) = Self.historyItem(item.bytes ?? [])
                            r.history.append(entry)
                            if let originalSeq { r.requeued.insert(originalSeq) }
                        }
                    }
                }
            }
        }
        report.channels = names.map { ChannelAudit(records[$0]!, historyMax: historyMax) }
        return report
    }

    /// `seq` of one history entry, and the `sg_original_seq` field a requeue leaves on it.
    static func historyItem(_ bytes: [UInt8]) -> (ChannelRecord.HistoryItem, Int64?) {
        guard let json = try? JSONParser.parse(bytes), case .object = json else { return (.unreadable, nil) }
        let original = json["fields"]?["sg_original_seq"]?.stringValue.flatMap { Int64($0) }
        switch json["seq"] {
        case .null?: return (.unsequenced, original)
        case let value?:
            guard let seq = value.int64Value else { return (.unreadable, original) }
            return (.seq(seq), original)
        case nil: return (.unreadable, original)
        }
    }

    /// Channels that have a key starting with `keyStart` (e.g. `sg:state:channel:`), found with SCAN.
    /// A partition tag between the prefix and the layout (`sg:{p3}:state:channel:`) is matched as well.
    func channels(of keyStart: String) async throws -> Set<String> {
        var found = Set<String>()
        var patterns = [Self.escaped(keyStart) + "*"]
        let prefix = keys.prefix + ":"
        if keyStart.hasPrefix(prefix) {
            let rest = String(keyStart.dropFirst(prefix.count))
            patterns.append(Self.escaped(prefix) + "{*}:" + Self.escaped(rest) + "*")
        }
        for pattern in patterns {
            for key in try await client.scanKeys(matching: pattern) {
                if let channel = Self.channel(in: key, prefix: prefix, keyStart: keyStart) { found.insert(channel) }
            }
        }
        return found
    }

    /// The channel id in `key`, which is `keyStart + id`, or the same with a `{tag}:` after the prefix.
    static func channel(in key: String, prefix: String, keyStart: String) -> String? {
        if key.hasPrefix(keyStart) { return String(key.dropFirst(keyStart.count)) }
        guard key.hasPrefix(prefix + "{") else { return nil }
        let afterPrefix = key.dropFirst(prefix.count)
        guard let close = afterPrefix.range(of: "}:") else { return nil }
        let rest = afterPrefix[close.upperBound...]
        let layout = keyStart.dropFirst(prefix.count)
        guard rest.hasPrefix(layout) else { return nil }
        return String(rest.dropFirst(layout.count))
    }

    /// Escapes SCAN's glob characters, so a prefix is matched literally.
    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            if "*?[]\\".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out
    }

    /// Dead letters per channel (`f:<channel field>`, `f:seq`), and requeued originals from the requeue log.
    private func readDeadLetters(of stream: String, into records: inout [String: ChannelRecord], report: inout VerifyReport) async throws {
        let channelName = Array("f:\(channelField)".utf8), seqName = Array("f:seq".utf8)
        var collected: [(String, Int64?)] = []
        var unattributed = 0
        try await StreamRangeReader(client: client, stream: WorkerKeys.deadLetters(of: stream), pageSize: 1000).forEachPage(.all) { page in
            for entry in page {
                guard let raw = entry.fields.first(where: { $0.name == channelName })?.value,
                      let channel = String(validating: raw, as: UTF8.self) else {
                    unattributed += 1
                    continue
                }
                let seq = entry.fields.first { $0.name == seqName }.flatMap { Int64(String(decoding: $0.value, as: UTF8.self)) }
                collected.append((channel, seq))
            }
        }
        for (channel, seq) in collected {
            if let seq { records[channel, default: ChannelRecord(channel: channel)].deadLettered.insert(seq) }
            else { records[channel, default: ChannelRecord(channel: channel)].deadUnsequenced += 1 }
        }
        report.deadLettersWithoutChannel += unattributed

        // The requeue log names the new entry; its channel is read from the stream.
        var requeues: [(newID: String, originalSeq: Int64)] = []
        try await StreamRangeReader(client: client, stream: WorkerKeys.deadLetters(of: stream) + ":requeued", pageSize: 1000).forEachPage(.all) { page in
            for entry in page {
                func field(_ name: String) -> String? {
                    entry.fields.first { $0.name == Array(name.utf8) }.map { String(decoding: $0.value, as: UTF8.self) }
                }
                if let newID = field("new_id"), let original = field("original_seq").flatMap({ Int64($0) }) {
                    requeues.append((newID, original))
                }
            }
        }
        for chunk in stride(from: 0, to: requeues.count, by: 200).map({ Array(requeues[$0..<min($0 + 200, requeues.count)]) }) {
            let replies = try await client.pipeline(chunk.map { RedisCommand("XRANGE", stream, $0.newID, $0.newID) })
            for (i, reply) in replies.enumerated() {
                guard case .success(let value) = reply, let entry = try? StreamRangeReader.entries(value).first,
                      case let (channel, _)? = entry.channelAndSeq(channelField: channelField) else {
                    report.requeuesUnattributed += 1
                    continue
                }
                records[channel, default: ChannelRecord(channel: channel)].requeued.insert(chunk[i].originalSeq)
            }
        }
    }
}

/// Everything `sgctl verify` found, with the verdict.
public struct VerifyReport: Sendable, Equatable {
    public var channels: [ChannelAudit] = []
    /// Entries in the input stream, or nil when there is none.
    public var streamEntries: Int?
    public var deadLettersWithoutChannel = 0
    /// Requeue records whose new entry is no longer in the stream, so their channel is unknown.
    public var requeuesUnattributed = 0

    public init() {}

    public var produced: Int64 { channels.reduce(0) { $0 + $1.produced } }
    public var applied: Int { channels.reduce(0) { $0 + $1.applied } }
    public var lost: Int64 { channels.reduce(0) { $0 + $1.lost } }
    public var notApplied: Int64 { channels.reduce(0) { $0 + $1.notApplied } }
    public var duplicated: Int64 { channels.reduce(0) { $0 + $1.duplicated } }
    public var outOfOrder: Int { channels.reduce(0) { $0 + $1.outOfOrder } }
    public var deadLettered: Int { channels.reduce(0) { $0 + $1.deadLettered } + deadLettersWithoutChannel }
    public var unexpected: Int { channels.reduce(0) { $0 + $1.unexpected } }
    public var unreadable: Int { channels.reduce(0) { $0 + $1.unreadable } }
    public var trimmed: Int { channels.filter(\.historyTrimmed).count }

    /// Nothing found is not a pass: a typo in the prefix must not look like a clean run.
    public var nothingToVerify: Bool { channels.isEmpty }
    public var ok: Bool { !nothingToVerify && channels.allSatisfy(\.ok) }

    public func text(keyPrefix: String, stream: String?, limit: Int = 20) -> String {
        if nothingToVerify {
            return "FAIL: nothing to verify: no seq counters, state or history under '\(keyPrefix)'"
                + (stream.map { " and no entries in stream '\($0)'" } ?? "")
        }
        var lines = [
            "\(ok ? "OK" : "FAIL"): \(channels.count) channels, \(produced) produced, \(applied) applied; "
                + "lost \(lost), not applied \(notApplied), duplicated \(duplicated), out of order \(outOfOrder), "
                + "dead-lettered \(deadLettered)" + (unexpected > 0 ? ", unexpected \(unexpected)" : "")
                + (unreadable > 0 ? ", unreadable \(unreadable)" : ""),
        ]
        if trimmed > 0 { lines.append("  \(trimmed) histories trimmed at history-max: their older seqs were checked through count") }
        if requeuesUnattributed > 0 { lines.append("  \(requeuesUnattributed) requeued dead letters no longer in the stream were not attributed") }
        let bad = channels.filter { !$0.ok }
        for audit in bad.prefix(limit) {
            lines.append("  channel \(audit.channel): " + audit.problems.joined(separator: "; "))
        }
        if bad.count > limit { lines.append("  … and \(bad.count - limit) more channels with problems") }
        return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
        .object([
            ("ok", .bool(ok)), ("channels", JSONValue(channels.count)), ("produced", JSONValue(produced)),
            ("applied", JSONValue(applied)), ("lost", JSONValue(lost)), ("not_applied", JSONValue(notApplied)),
            ("duplicated", JSONValue(duplicated)), ("out_of_order", JSONValue(outOfOrder)),
            ("dead_lettered", JSONValue(deadLettered)), ("unexpected", JSONValue(unexpected)),
            ("unreadable", JSONValue(unreadable)), ("trimmed_histories", JSONValue(trimmed)),
            ("problems", .array(channels.filter { !$0.ok }.prefix(100).map { audit -> JSONValue in
                .object([("channel", .string(audit.channel)), ("problems", .array(audit.problems.map { .string($0) }))])
            })),
        ])
    }
}
