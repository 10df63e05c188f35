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
                await deadLetter(streamEntry, reason: bad.reason, detail: bad.description, deliveries: entry.deliveries, channel: nil, seq: nil)
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

    /// Takes in entries delivered before (this consumer's own pending ones, or claimed ones),
    /// with their delivery counts, which decide max-deliveries.
    func acceptRedelivered(_ entries: [(stream: String, entry: StreamReplyEntry)]) async {
        let counts = await deliveryCounts(entries.map { ($0.stream, $0.entry.id) })
        await accept(zip(entries, counts).map { read, deliveries in
            Entry(stream: read.stream, id: read.entry.id, fields: read.entry.fields, deliveries: deliveries)
        })
    }

    /// Takes in claimed entries of one stream, skipping those already queued or running here (a
    /// claim must not queue an entry twice).
    func acceptClaimed(_ entries: [StreamReplyEntry], of stream: String) async {
        let queued = await dispatcher.contains(stream: stream, ids: entries.map(\.id))
        await acceptRedelivered(entries.filter { !queued.contains($0.id) }.map { (stream, $0) })
    }

    /// Delivery counts from XPENDING in the entries' order, 1 where unknown; one round trip.
    private func deliveryCounts(_ ids: [(stream: String, id: String)]) async -> [Int] {
        guard !ids.isEmpty else { return [] }
        let commands = ids.map { RedisCommand("XPENDING", $0.stream, settings.group, $0.id, $0.id, 1) }
        guard let results = try? await client.pipeline(commands) else { return Array(repeating: 1, count: ids.count) }
        return results.map { result in
            if case .success(let reply) = result, let row = reply.array?.first?.array, row.count == 4, let n = row[3].int {
                return Int(n)
            }
            return 1
        }
    }
}
