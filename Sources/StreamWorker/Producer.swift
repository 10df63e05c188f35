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
        var arguments: [any RedisArgumentConvertible] = [channelField, channel]
        for field in fields { arguments += [field.name, field.value] }
        let reply = try await client.evaluate(WorkerScripts.produce, keys: [keys.seq(channel: channel), keys.stream(stream, channel: channel)], arguments: arguments)
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string, let seq = parts[1].int else {
            throw RedisError.unexpectedReply("produce returned \(reply)")
        }
        return (id, seq)
    }
}
