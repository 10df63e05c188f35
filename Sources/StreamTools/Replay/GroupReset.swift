import RedisClient

/// What `replay reset` would do, computed before anything is written.
public struct ResetPlan: Sendable, Equatable {
    public var stream: String
    public var group: String
    /// The id the group will have as its last delivered id (`$` resolved to the stream's last id).
    public var targetID: StreamID
    public var currentLastDelivered: StreamID
    /// Entries the group has already been given that it will be given again.
    public var redelivered: Int
    /// Entries not yet delivered that the move skips (a move forward).
    public var skipped: Int
    /// The group's read counter after the move, so that Redis' lag stays right.
    public var entriesRead: Int64?

    public var json: JSONValue {
        .object([
            ("stream", .string(stream)), ("group", .string(group)),
            ("from", .string(currentLastDelivered.description)), ("to", .string(targetID.description)),
            ("redelivered", JSONValue(redelivered)), ("skipped", JSONValue(skipped)),
        ])
    }

    public var text: String {
        let e = TerminalText.escape
        var s = "group \(e(group)) on \(e(stream)): last delivered id \(currentLastDelivered) → \(targetID); "
        s += "\(redelivered) \(redelivered == 1 ? "entry" : "entries") will be redelivered"
        if skipped > 0 { s += ", \(skipped) not yet delivered will be skipped" }
        return s
    }
}

/// XGROUP SETID with a count of its consequences first.
public struct GroupReset: Sendable {
    public let client: RedisClient
    public let stream: String
    public let group: String

    public init(client: RedisClient, stream: String, group: String) {
        self.client = client
        self.stream = stream
        self.group = group
    }

    public func plan(to target: ResetTarget) async throws -> ResetPlan {
        let info: RESPValue
        do {
            info = try await client.send("XINFO", "STREAM", stream)
        } catch let error as RedisError where error.serverCode == "ERR" {
            throw ResetError.noStream(stream)
        }
        let streamInfo = InfoReply(info)
        let lastGenerated = streamInfo["last-generated-id"]?.string.flatMap(StreamID.init) ?? .zero
        let entriesAdded = streamInfo["entries-added"]?.int
        let groups = try await client.send("XINFO", "GROUPS", stream).array ?? []
        guard let groupInfo = groups.map(InfoReply.init).first(where: { $0["name"]?.string == group }) else {
            throw ResetError.noGroup(stream: stream, group: group)
        }
        let current = groupInfo["last-delivered-id"]?.string.flatMap(StreamID.init) ?? .zero
        let targetID: StreamID
        switch target {
        case .beginning: targetID = .zero
        case .end: targetID = lastGenerated
        case .id(let id): targetID = id
        }
        let reader = StreamRangeReader(client: client, stream: stream, pageSize: 1000)
        var redelivered = 0, skipped = 0
        if targetID < current {
            redelivered = try await reader.count(EntryRange(start: "(" + targetID.description, end: current.description, limit: nil))
        } else if current < targetID {
            skipped = try await reader.count(EntryRange(start: "(" + current.description, end: targetID.description, limit: nil))
        }
        var entriesRead: Int64?
        if let entriesAdded {
            let after = try await reader.count(EntryRange(start: "(" + targetID.description, end: "+", limit: nil))
            entriesRead = max(0, entriesAdded - Int64(after))
        }
        return ResetPlan(stream: stream, group: group, targetID: targetID, currentLastDelivered: current,
                         redelivered: redelivered, skipped: skipped, entriesRead: entriesRead)
    }

    public func apply(_ plan: ResetPlan) async throws {
        var arguments: [any RedisArgumentConvertible] = ["SETID", stream, group, plan.targetID.description]
        if let read = plan.entriesRead { arguments += ["ENTRIESREAD", read] }
        try await client.send(RedisCommand("XGROUP", arguments))
    }
}

/// Kept as a name for callers; the same error as ``StreamGroupError``.
public typealias ResetError = StreamGroupError
