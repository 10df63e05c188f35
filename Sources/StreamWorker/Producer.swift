import RedisClient
import Tracing

/// The producer side: appends a message stamped with its channel's next `seq`, in one script,
/// so sequence numbers and stream order can never disagree.
public struct Producer: Sendable {
    public let client: RedisClient
    public let keys: WorkerKeys
    public let channelField: String

    /// Writes the trace context into entries; nil uses the bootstrapped `InstrumentationSystem`.
    public let instrument: (any Instrument)?

    public init(client: RedisClient, keys: WorkerKeys = WorkerKeys(), channelField: String = "channel_id",
                instrument: (any Instrument)? = nil) {
        self.client = client
        self.keys = keys
        self.channelField = channelField
        self.instrument = instrument
    }

    /// Appends to `stream`, or with partitions to the channel's partition stream of `stream`;
    /// returns the entry id and the seq it was stamped with.
    ///
    /// Inside a traced operation (a current `ServiceContext` and a bootstrapped instrument), the
    /// entry carries its trace context as `traceparent` (and `tracestate`), so the worker's spans
    /// for the message join the producer's trace, replacing any trace fields in `fields`, which
    /// are kept otherwise.
    @discardableResult
    public func send(stream: String, channel: String, fields: [StreamField] = []) async throws -> (id: String, seq: Int64) {
        let fields = withTraceContext(fields)
        var arguments: [any RedisArgumentConvertible] = [channelField, channel]
        for field in fields { arguments += [field.name, field.value] }
        let reply = try await client.evaluate(WorkerScripts.produce, keys: [keys.seq(channel: channel), keys.stream(stream, channel: channel)], arguments: arguments)
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string, let seq = parts[1].int else {
            throw RedisError.unexpectedReply("produce returned \(reply)")
        }
        return (id, seq)
    }

    /// Messages per script call of ``send(_:stream:)``.
    public static let messagesPerCall = 256

    /// Appends many messages, each stamped with its channel's next seq as ``send(stream:channel:fields:)``
    /// does, with one script call per partition (up to ``messagesPerCall`` messages each); the
    /// partitions' calls go out together. Each channel's messages keep their order in `messages`.
    ///
    /// Returns one result per message, in the order of `messages`. A call fails as a whole: a seq
    /// counter that is not a valid seq or is at the limit fails every message of the call, and
    /// nothing of it is written. The partition's later calls are not sent then (their messages
    /// fail with the same error), so sending the failed messages again keeps each channel's order.
    /// After a connection error, as after one of a lone send, whether the call was applied is unknown.
    public func send(_ messages: [OutgoingMessage], stream: String) async -> [Result<ProducedEntry, any Error>] {
        // A call's keys are one partition's, so one Redis Cluster slot (a cluster needs partitions).
        let perCall = Self.messagesPerCall
        var groups: [Int: [Int]] = [:]
        var order: [Int] = []
        for (index, message) in messages.enumerated() {
            let group = keys.partition(of: message.channel)
            if groups[group] == nil { order.append(group) }
            groups[group, default: []].append(index)
        }
        var results = [Result<ProducedEntry, any Error>](repeating: .failure(CancellationError()), count: messages.count)
        await withTaskGroup(of: [(Int, Result<ProducedEntry, any Error>)].self) { group in
            for key in order {
                let indices = groups[key]!
                group.addTask {
                    var out: [(Int, Result<ProducedEntry, any Error>)] = []
                    var failure: (any Error)?
                    var start = 0
                    while start < indices.count {
                        let chunk = Array(indices[start..<min(start + perCall, indices.count)])
                        start += chunk.count
                        if let failure {
                            out += chunk.map { ($0, .failure(failure)) }
                            continue
                        }
                        do {
                            let entries = try await call(chunk.map { messages[$0] }, stream: stream)
                            out += zip(chunk, entries).map { ($0, .success($1)) }
                        } catch {
                            failure = error
                            out += chunk.map { ($0, .failure(error)) }
                        }
                    }
                    return out
                }
            }
            for await partial in group {
                for (index, result) in partial { results[index] = result }
            }
        }
        return results
    }

    /// One call of ``WorkerScripts/produceBatch``; the messages share a stream.
    private func call(_ messages: [OutgoingMessage], stream: String) async throws -> [ProducedEntry] {
        var keyList = [keys.stream(stream, channel: messages[0].channel)]
        var arguments: [any RedisArgumentConvertible] = [channelField]
        for message in messages {
            let fields = withTraceContext(message.fields)
            keyList.append(keys.seq(channel: message.channel))
            arguments += [message.channel, fields.count]
            for field in fields { arguments += [field.name, field.value] }
        }
        let reply = try await client.evaluate(WorkerScripts.produceBatch, keys: keyList, arguments: arguments)
        guard let parts = reply.array, parts.count == 2 * messages.count else {
            throw RedisError.unexpectedReply("produce batch of \(messages.count) returned \(reply)")
        }
        return try stride(from: 0, to: parts.count, by: 2).map { i in
            guard let id = parts[i].string, let seq = parts[i + 1].int else {
                throw RedisError.unexpectedReply("produce batch returned \(reply)")
            }
            return ProducedEntry(id: id, seq: seq)
        }
    }

    /// Inside a traced operation, `fields` with the current trace context in place of any they had.
    private func withTraceContext(_ fields: [StreamField]) -> [StreamField] {
        var fields = fields
        if let context = ServiceContext.current {
            // The injected context replaces the caller's whole: a `tracestate` of another trace must not stay.
            var injected: [StreamField] = []
            (instrument ?? InstrumentationSystem.instrument).inject(context, into: &injected, using: StreamFieldsInjector())
            if !injected.isEmpty {
                let replaced = Set(injected.map(\.name) + [RunTrace.traceparent, RunTrace.tracestate])
                fields.removeAll { replaced.contains($0.name) }
                fields += injected
            }
        }
        return fields
    }
}

/// A message for ``Producer/send(_:stream:)``.
public struct OutgoingMessage: Sendable {
    public var channel: String
    public var fields: [StreamField]

    public init(channel: String, fields: [StreamField] = []) {
        self.channel = channel
        self.fields = fields
    }
}

/// Where ``Producer`` appended a message, and the seq it was stamped with.
public struct ProducedEntry: Sendable, Equatable {
    public var id: String
    public var seq: Int64

    public init(id: String, seq: Int64) {
        self.id = id
        self.seq = seq
    }
}
