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

    /// Validates an entry and either dispatches it or dead-letters it.
    func accept(stream: String, id: String, fields: [StreamField]?, deliveries: Int) async {
        guard let fields else {
            // Deleted from the stream while pending: nothing left to process.
            _ = try? await client.send("XACK", stream, settings.group, id)
            return
        }
        let entry = StreamEntry(stream: stream, id: id, fields: fields)
        switch InboundMessage.parse(entry, channelField: settings.channelField, maxEntryBytes: settings.maxEntryBytes) {
        case .success(let message):
            if deliveries > settings.maxDeliveries {
                await deadLetter(entry, reason: "max_deliveries", detail: "delivered \(deliveries) times", deliveries: deliveries,
                                 channel: message.channel, seq: message.seq)
            } else {
                await dispatcher.submit(message)
            }
        case .failure(let bad):
            await deadLetter(entry, reason: bad.reason, detail: bad.description, deliveries: deliveries, channel: nil, seq: nil)
        }
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

    /// Delivery counts from XPENDING, one round trip for the whole batch.
    func deliveryCounts(_ ids: [(String, String)]) async -> [String: Int] {
        guard !ids.isEmpty else { return [:] }
        let commands = ids.map { RedisCommand("XPENDING", $0.0, settings.group, $0.1, $0.1, 1) }
        guard let results = try? await client.pipeline(commands) else { return [:] }
        var counts: [String: Int] = [:]
        for (i, result) in results.enumerated() {
            if case .success(let reply) = result, let row = reply.array?.first?.array, row.count == 4, let n = row[3].int {
                counts["\(ids[i].0)/\(ids[i].1)"] = Int(n)
            }
        }
        return counts
    }

    /// Takes in claimed entries of one stream with their delivery counts, skipping those already
    /// queued or running here (a claim must not queue an entry twice).
    func acceptClaimed(_ entries: [StreamReplyEntry], of stream: String) async {
        let counts = await deliveryCounts(entries.map { (stream, $0.id) })
        for entry in entries where !Task.isCancelled {
            if await dispatcher.contains(stream: stream, id: entry.id) { continue }
            await accept(stream: stream, id: entry.id, fields: entry.fields, deliveries: counts["\(stream)/\(entry.id)"] ?? 1)
        }
    }
}
