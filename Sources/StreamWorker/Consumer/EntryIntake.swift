import Logging
import RedisClient

/// Where every entry the worker reads or claims comes in: validated, then queued on its channel or
/// dead-lettered with its reason (bad input, or delivered more than max-deliveries times).
struct EntryIntake: Sendable {
    let client: RedisClient
    let settings: WorkerConfiguration
    let dispatcher: ChannelDispatcher
    let deadLetterer: DeadLetterer
    let logger: Logger

    /// An entry as read or claimed; `fields` is nil when it was deleted from the stream while pending.
    struct Entry: Sendable {
        var stream: String
        var id: String
        var fields: [StreamField]?
        var deliveries: Int
    }

    /// Validates entries in order, dispatching the good ones together and dead-lettering the rest.
    /// What came before a dead-lettered entry is dispatched before it is dead-lettered, and what
    /// came after it only then, so every effect keeps the entries' order. Stops when cancelled:
    /// the rest stays pending, for this consumer's restart or a reclaimer.
    func accept(_ entries: [Entry]) async {
        var good: [InboundMessage] = []
        good.reserveCapacity(entries.count)
        for entry in entries {
            if Task.isCancelled { break }
            guard let fields = entry.fields else {
                // Deleted from the stream while pending: nothing left to process.
                _ = try? await client.send("XACK", entry.stream, settings.group, entry.id)
                continue
            }
            let streamEntry = StreamEntry(stream: entry.stream, id: entry.id, fields: fields)
            switch InboundMessage.parse(streamEntry, channelField: settings.channelField, maxEntryBytes: settings.maxEntryBytes) {
            case .success(let message) where entry.deliveries <= settings.maxDeliveries:
                good.append(message)
            case .success(let message):
                await dispatch(&good)
                await deadLetter(streamEntry, reason: "max_deliveries", detail: "delivered \(entry.deliveries) times",
                                 deliveries: entry.deliveries, channel: message.channel, seq: message.seq)
            case .failure(let bad):
                await dispatch(&good)
                // An entry refused only for its size still has its channel and seq: dead-lettered
                // with them, its seq counts as done and the channel's next message need not wait.
                let known = InboundMessage.parse(streamEntry, channelField: settings.channelField, maxEntryBytes: .max)
                let message = try? known.get()
                await deadLetter(streamEntry, reason: bad.reason, detail: bad.description, deliveries: entry.deliveries,
                                 channel: message?.channel, seq: message?.seq)
            }
        }
        if Task.isCancelled { return }
        await dispatch(&good)
    }

    private func dispatch(_ messages: inout [InboundMessage]) async {
        guard !messages.isEmpty else { return }
        await dispatcher.submit(messages)
        messages.removeAll(keepingCapacity: true)
    }

    private func deadLetter(_ entry: StreamEntry, reason: String, detail: String, deliveries: Int, channel: String?, seq: Int64?) async {
        do {
            try await deadLetterer.deadLetter(stream: entry.stream, id: entry.id, fields: entry.fields, reason: reason,
                                              detail: detail, deliveries: deliveries, channel: channel, seq: seq)
        } catch {
            // Still pending: the reclaimer retries it later.
            logger.error("Dead-lettering failed", metadata: ["entry": "\(entry.id)", "error": "\(error)"])
        }
    }

    /// Takes in entries delivered before (this consumer's own pending ones, or claimed ones), with
    /// their delivery counts, which decide max-deliveries. Those already queued or running here
    /// are skipped: an entry must not be queued twice, nor judged by a delivery it did not need.
    func acceptRedelivered(_ entries: [(stream: String, entry: StreamReplyEntry)]) async {
        var queued: [String: Set<String>] = [:]
        for stream in Set(entries.map(\.stream)) {
            queued[stream] = await dispatcher.contains(stream: stream, ids: entries.compactMap { $0.stream == stream ? $0.entry.id : nil })
        }
        let fresh = entries.filter { queued[$0.stream]?.contains($0.entry.id) != true }
        let counts = await deliveryCounts(fresh.map { ($0.stream, $0.entry.id) })
        await accept(zip(fresh, counts).map { read, deliveries in
            Entry(stream: read.stream, id: read.entry.id, fields: read.entry.fields, deliveries: deliveries)
        })
    }

    /// Takes in what a read that was cut short delivered: Redis made those entries pending here,
    /// but its reply never arrived. They are this consumer's pending entries of `streams` newer than
    /// the last id a read returned (`received`; the group's delivered id only grows), delivered since
    /// `start`, and neither queued here before the search nor now, found with XPENDING and fetched
    /// with XRANGE. Neither counts as a delivery, where reading them again with XREADGROUP would:
    /// every rebalance would then bring healthy entries nearer to max-deliveries. The bounds keep
    /// out what finished meanwhile, or was left pending on purpose to be retried after claim-idle.
    func acceptUnreceived(streams: [String], since start: ContinuousClock.Instant, after received: [String: String]) async throws {
        let page = 1000
        let held = await dispatcher.inFlightEntries
        for stream in streams {
            var from = received[stream].map { "(" + $0 } ?? "-"
            while true {
                let rows = try StreamReplies.pending(
                    try await client.send("XPENDING", stream, settings.group, from, "+", page, settings.consumer))
                // Redis counts idle time from the delivery; the margin covers its millisecond rounding.
                let window = start.duration(to: .now) + .milliseconds(250)
                let recent = rows.filter { Duration.milliseconds($0.idle) <= window }
                let queued = await dispatcher.contains(stream: stream, ids: recent.map(\.id))
                let lost = recent.filter { !queued.contains($0.id) && held[stream]?.contains($0.id) != true }
                if !lost.isEmpty {
                    let found = try await fetch(lost.map(\.id), of: stream)
                    await accept(zip(lost, found).map { row, entry in
                        Entry(stream: stream, id: row.id, fields: entry.fields, deliveries: Int(row.deliveries))
                    })
                }
                guard rows.count == page, let last = rows.last else { break }
                from = "(" + last.id
            }
        }
    }

    /// The entries with `ids`, in their order, with XRANGE (which counts no delivery); one round
    /// trip. An entry deleted from the stream comes back without fields.
    func fetch(_ ids: [String], of stream: String) async throws -> [StreamReplyEntry] {
        guard !ids.isEmpty else { return [] }
        let bodies = try await client.pipeline(ids.map { RedisCommand("XRANGE", stream, $0, $0) })
        return try zip(ids, bodies).map { id, body in
            try StreamReplies.range(try body.get()).first { $0.id == id } ?? StreamReplyEntry(id: id, fields: nil)
        }
    }

    /// Delivery counts from XPENDING in the entries' order, 1 where unknown; one round trip.
    private func deliveryCounts(_ ids: [(stream: String, id: String)]) async -> [Int] {
        guard !ids.isEmpty else { return [] }
        let commands = ids.map { RedisCommand("XPENDING", $0.stream, settings.group, $0.id, $0.id, 1) }
        guard let results = try? await client.pipeline(commands) else { return Array(repeating: 1, count: ids.count) }
        return results.map { result in
            guard let reply = try? result.get(), let row = try? StreamReplies.pending(reply).first else { return 1 }
            return Int(row.deliveries)
        }
    }
}
