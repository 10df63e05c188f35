import Foundation
import Logging
import RedisClient

/// Moves entries to `<stream>:dead` with their reason, acknowledging them in the same script.
struct DeadLetterer: Sendable {
    let client: RedisClient
    let group: String
    let consumer: String
    let keys: WorkerKeys
    let logger: Logger
    let metrics = WorkerMetrics()

    @discardableResult
    func deadLetter(stream: String, id: String, fields: [StreamField], reason: String, detail: String,
                    deliveries: Int, channel: String?, seq: Int64?) async throws -> Bool {
        // Every field, however many: the script splits what one XADD cannot take (WorkerScripts.deadLetter).
        var arguments: [any RedisArgumentConvertible] = [
            group, id, reason, String(deliveries), consumer,
            String(Int64(Date().timeIntervalSince1970 * 1000)), seq.map(String.init) ?? "", detail,
        ]
        for field in fields { arguments += [field.name, field.value] }
        let state = channel.map { keys.state(channel: $0) } ?? stream
        let deadSeqs = channel.map { keys.deadSeqs(channel: $0) } ?? stream
        let skippedSeqs = channel.map { keys.skippedSeqs(channel: $0) } ?? stream
        let reply = try await client.evaluate(
            WorkerScripts.deadLetter,
            keys: [stream, WorkerKeys.deadLetters(of: stream), state, deadSeqs, skippedSeqs],
            arguments: arguments)
        let moved = reply.int == 1
        if moved {
            metrics.deadLettered(reason)
            var metadata: Logger.Metadata = [
                "stream": "\(stream)", "entry": "\(id)", "reason": "\(reason)", "detail": "\(detail)", "deliveries": "\(deliveries)",
            ]
            if let channel { metadata["channel"] = .string(channel) }
            logger.warning("Dead-lettered entry", metadata: metadata)
        }
        return moved
    }
}
