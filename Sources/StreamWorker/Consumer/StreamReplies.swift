import RedisClient

/// One entry as a stream command returned it; `fields` is nil for an entry deleted while pending.
struct StreamReplyEntry: Sendable, Equatable {
    var id: String
    var fields: [StreamField]?
}

/// Decoding of the stream commands' replies. Every decoder throws on a shape the command cannot
/// return, naming the command, so a malformed reply is a failed read, never an empty one.
enum StreamReplies {
    /// XREADGROUP: nil (the block timed out) or `[[stream, [entry, …]], …]`.
    static func readGroup(_ reply: RESPValue) throws -> [(stream: String, entry: StreamReplyEntry)] {
        if reply.isNull { return [] }
        guard let streams = reply.array else { throw RedisError.unexpectedReply("XREADGROUP returned \(reply)") }
        var out: [(stream: String, entry: StreamReplyEntry)] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let name = pair[0].string, let entries = pair[1].array else {
                throw RedisError.unexpectedReply("XREADGROUP returned the stream \(stream)")
            }
            for entry in entries { out.append((name, try self.entry(entry, from: "XREADGROUP"))) }
        }
        return out
    }

    /// XREAD of one stream: nil (timed out) or `[[stream, [[id, [f, v, …]], …]]]`. Throws on any
    /// other shape, and on an entry without fields (XREAD never returns deleted ones).
    static func read(_ reply: RESPValue, stream: String) throws -> [(id: String, fields: [StreamField])] {
        if reply.isNull { return [] }
        guard let streams = reply.array, streams.count == 1, let pair = streams[0].array, pair.count == 2,
              pair[0].string == stream, let entries = pair[1].array else {
            throw RedisError.unexpectedReply("XREAD \(stream) returned \(reply)")
        }
        return try entries.map { value in
            let entry = try entry(value, from: "XREAD \(stream)")
            guard let fields = entry.fields else { throw RedisError.unexpectedReply("XREAD \(stream) returned the entry \(value)") }
            return (entry.id, fields)
        }
    }

    /// `[id, [f, v, …]]`, or `[id, nil]` for an entry deleted while pending.
    static func entry(_ value: RESPValue, from command: @autoclosure () -> String) throws -> StreamReplyEntry {
        guard let parts = value.array, parts.count == 2, let id = parts[0].string else {
            throw RedisError.unexpectedReply("\(command()) returned the entry \(value)")
        }
        if parts[1].isNull { return StreamReplyEntry(id: id, fields: nil) }
        let pairs = try parts[1].pairs(from: "\(command()) entry \(id)")
        return StreamReplyEntry(id: id, fields: try pairs.map { name, value in
            guard let bytes = value.bytes else { throw RedisError.unexpectedReply("\(command()) entry \(id) has the value \(value)") }
            return StreamField(name: name, value: bytes)
        })
    }

    /// XAUTOCLAIM: `[next cursor, [entry, …], [deleted id, …]]` (the last part from Redis 7 on).
    static func autoClaim(_ reply: RESPValue) throws -> (cursor: String, entries: [StreamReplyEntry], deleted: [String]) {
        guard let parts = reply.array, parts.count == 2 || parts.count == 3, let cursor = parts[0].string,
              let entries = parts[1].array else {
            throw RedisError.unexpectedReply("XAUTOCLAIM returned \(reply)")
        }
        var deleted: [String] = []
        for value in parts.count == 3 ? parts[2].array ?? [] : [] {
            guard let id = value.string else { throw RedisError.unexpectedReply("XAUTOCLAIM returned the deleted id \(value)") }
            deleted.append(id)
        }
        return (cursor, try entries.map { try entry($0, from: "XAUTOCLAIM") }, deleted)
    }

    /// XAUTOCLAIM … JUSTID: `[next cursor, [id, …], [deleted id, …]]`.
    static func autoClaimIDs(_ reply: RESPValue) throws -> (cursor: String, ids: [String]) {
        guard let parts = reply.array, parts.count == 2 || parts.count == 3, let cursor = parts[0].string,
              let values = parts[1].array else {
            throw RedisError.unexpectedReply("XAUTOCLAIM JUSTID returned \(reply)")
        }
        return (cursor, try values.map { value in
            guard let id = value.string else { throw RedisError.unexpectedReply("XAUTOCLAIM JUSTID returned the id \(value)") }
            return id
        })
    }

    /// XPENDING's extended form: `[[id, consumer, idle ms, deliveries], …]`.
    static func pending(_ reply: RESPValue) throws -> [(id: String, idle: Int64, deliveries: Int64)] {
        guard let rows = reply.array else { throw RedisError.unexpectedReply("XPENDING returned \(reply)") }
        return try rows.map { row in
            guard let fields = row.array, fields.count == 4, let id = fields[0].string, let idle = fields[2].int,
                  let deliveries = fields[3].int else {
                throw RedisError.unexpectedReply("XPENDING returned the row \(row)")
            }
            return (id, idle, deliveries)
        }
    }

    /// XRANGE: `[entry, …]`.
    static func range(_ reply: RESPValue) throws -> [StreamReplyEntry] {
        guard let entries = reply.array else { throw RedisError.unexpectedReply("XRANGE returned \(reply)") }
        return try entries.map { try entry($0, from: "XRANGE") }
    }
}
