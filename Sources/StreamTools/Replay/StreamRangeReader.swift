import RedisClient
import StreamWorker

/// Reads a range of a stream in pages (XRANGE … COUNT), so exports of any size run in bounded memory.
///
/// Given several streams (the partition streams of one input), it reads them one after another:
/// a channel lives in one partition, so each channel's entries still come in order.
public struct StreamRangeReader: Sendable {
    public let client: RedisClient
    public let streams: [String]
    public let pageSize: Int

    public init(client: RedisClient, stream: String, pageSize: Int = 500) {
        self.init(client: client, streams: [stream], pageSize: pageSize)
    }

    public init(client: RedisClient, streams: [String], pageSize: Int = 500) {
        self.client = client
        self.streams = streams
        self.pageSize = max(1, pageSize)
    }

    /// The streams that exist, so a typo does not look like an empty range.
    public func existing() async throws -> [String] {
        let replies = try await client.pipeline(streams.map { RedisCommand("EXISTS", $0) })
        return try zip(streams, replies).filter { try $0.1.get().int == 1 }.map(\.0)
    }

    /// The entries of all the streams (XLEN summed).
    public func length() async throws -> Int {
        try await client.pipeline(streams.map { RedisCommand("XLEN", $0) }).reduce(0) { $0 + Int(try $1.get().int ?? 0) }
    }

    /// Calls `body` with each page in id order, stream by stream, until the range or its limit
    /// (counted over all the streams) is exhausted.
    public func forEachPage(_ range: EntryRange, _ body: ([ExportedEntry]) async throws -> Void) async throws {
        var remaining = range.limit ?? Int.max
        for stream in streams where remaining > 0 {
            var start = range.start
            while remaining > 0 {
                let count = min(pageSize, remaining)
                let reply = try await client.send("XRANGE", stream, start, range.end, "COUNT", count)
                let page = try Self.entries(reply)
                if page.isEmpty { break }
                remaining -= page.count
                try await body(page)
                guard page.count == count, let last = page.last?.id else { break }
                start = "(" + last
            }
        }
    }

    /// How many entries the range holds (read page by page: Redis has no range count).
    public func count(_ range: EntryRange) async throws -> Int {
        var n = 0
        try await forEachPage(range) { n += $0.count }
        return n
    }

    /// `[[id, [f, v, …]], …]` → entries.
    static func entries(_ reply: RESPValue) throws -> [ExportedEntry] {
        guard let items = reply.array else { throw RedisError.unexpectedReply("XRANGE returned \(reply)") }
        return try items.map { item in
            guard let parts = item.array, parts.count == 2, let id = parts[0].string, let flat = parts[1].array else {
                throw RedisError.unexpectedReply("XRANGE entry \(item)")
            }
            var fields: [StreamField] = []
            fields.reserveCapacity(flat.count / 2)
            var i = 0
            while i + 1 < flat.count {
                fields.append(StreamField(name: flat[i].bytes ?? [], value: flat[i + 1].bytes ?? []))
                i += 2
            }
            return ExportedEntry(id: id, fields: fields)
        }
    }
}
