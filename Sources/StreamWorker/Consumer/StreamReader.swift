import RedisClient

/// Decoding of XREADGROUP / XAUTOCLAIM / XPENDING replies into entries.
enum StreamReplies {
    /// `[[stream, [[id, [f, v, …]] | [id, nil], …]], …]` → entries; deleted entries come back with `fields == nil`.
    static func readGroup(_ reply: RESPValue) -> [(stream: String, id: String, fields: [StreamField]?)] {
        guard let streams = reply.array else { return [] }
        var out: [(String, String, [StreamField]?)] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2, let name = pair[0].string, let entries = pair[1].array else { continue }
            for entry in entries { if let e = self.entry(entry) { out.append((name, e.0, e.1)) } }
        }
        return out
    }

    /// XREAD of one stream: nil (timed out) or `[[stream, [[id, [f, v, …]], …]]]`. Throws on any
    /// other shape, and on an entry without fields (XREAD never returns deleted ones).
    static func read(_ reply: RESPValue, stream: String) throws -> [(id: String, fields: [StreamField])] {
        if case .null = reply { return [] }
        guard let streams = reply.array, streams.count == 1, let pair = streams[0].array, pair.count == 2,
              pair[0].string == stream, let entries = pair[1].array else {
            throw RedisError.unexpectedReply("XREAD \(stream) returned \(reply)")
        }
        return try entries.map { value in
            guard let (id, fields) = entry(value), let fields else {
                throw RedisError.unexpectedReply("XREAD \(stream) returned the entry \(value)")
            }
            return (id, fields)
        }
    }

    static func entry(_ value: RESPValue) -> (String, [StreamField]?)? {
        guard let parts = value.array, parts.count == 2, let id = parts[0].string else { return nil }
        guard let flat = parts[1].array else { return (id, nil) }
        var fields: [StreamField] = []
        var i = 0
        while i + 1 < flat.count {
            fields.append(StreamField(name: flat[i].bytes ?? [], value: flat[i + 1].bytes ?? []))
            i += 2
        }
        return (id, fields)
    }

    /// XAUTOCLAIM reply: `[next-cursor, [entries…], [deleted ids…]]`.
    static func autoClaim(_ reply: RESPValue) -> (cursor: String, entries: [(String, [StreamField]?)], deleted: [String]) {
        guard let parts = reply.array, parts.count >= 2, let cursor = parts[0].string else { return ("0-0", [], []) }
        let entries = parts[1].array?.compactMap { entry($0) } ?? []
        let deleted = parts.count > 2 ? (parts[2].array?.compactMap(\.string) ?? []) : []
        return (cursor, entries, deleted)
    }
}
