import RedisClient
import StreamWorker

/// Reads a range of a stream in pages (XRANGE … COUNT), so exports of any size run in bounded memory.
public struct StreamRangeReader: Sendable {
    public let client: RedisClient
    public let stream: String
    public let pageSize: Int

    public init(client: RedisClient, stream: String, pageSize: Int = 500) {
        self.client = client
        self.stream = stream
        self.pageSize = max(1, pageSize)
    }

    /// Calls `body` with each page in id order until the range or its limit is exhausted.
    public func forEachPage(_ range: EntryRange, _ body: ([ExportedEntry]) async throws -> Void) async throws {
        var start = range.start
        var remaining = range.limit ?? Int.max
        while remaining > 0 {
            let count = min(pageSize, remaining)
            let reply = try await client.send("XRANGE", stream, start, range.end, "COUNT", count)
            let page = try Self.entries(reply)
            if page.isEmpty { return }
            remaining -= page.count
            try await body(page)
            if page.count < count { return }
            guard let last = page.last?.id else { return }
            start = "(" + last
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
