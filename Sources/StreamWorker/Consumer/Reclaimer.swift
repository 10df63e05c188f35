import Logging
import RedisClient

/// Claims entries that sat pending too long (a crashed or stuck worker's) and, when a partition's
/// lease is acquired, all of that partition's pending entries at once.
struct Reclaimer: Sendable {
    let client: RedisClient
    let settings: WorkerConfiguration
    let dispatcher: ChannelDispatcher
    let intake: EntryIntake
    let readSet: ReadSet?
    let metrics: WorkerMetrics
    let logger: Logger

    /// Claims entries idle longer than claim-idle (a crashed or stuck worker's), so they are processed here.
    func run() async {
        let interval = max(settings.claimIdle / 4, .milliseconds(100))
        var cursors: [String: String] = [:]
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            for stream in readSet?.snapshot.streams ?? settings.streams {
                do {
                    cursors[stream] = try await claimPage(of: stream, idle: settings.claimIdle, from: cursors[stream] ?? "0-0",
                                                          saying: "Reclaimed idle entries")
                } catch {
                    logger.warning("Reclaim failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
                }
            }
        }
    }

    /// Claims every pending entry of `streams` for this consumer (the previous owner's included,
    /// without waiting for claim-idle) and dispatches them. Unless `countingDeliveries`, they are
    /// claimed with JUSTID and fetched apart, so the hand-over adds no delivery: a pool's rolling
    /// restart moves a partition many times, and its queued entries must not run out of deliveries.
    func takeOver(streams: [String], countingDeliveries: Bool) async {
        await dispatcher.reopen(streams: Set(streams))
        for stream in streams {
            var cursor = "0-0"
            repeat {
                do {
                    // Idle 0: the previous owner has shed it or lost its lease; a late holder is
                    // still stopped by the channel's lock and fence.
                    cursor = try await claimPage(of: stream, idle: .zero, from: cursor, justIDs: !countingDeliveries,
                                                 saying: "Took over a partition's pending entries")
                } catch {
                    // What is left is found by the reclaimer after claim-idle.
                    logger.warning("Taking over a partition's pending entries failed", metadata: ["stream": "\(stream)", "error": "\(error)"])
                    break
                }
            } while cursor != "0-0" && !Task.isCancelled
        }
    }

    /// One XAUTOCLAIM page of `stream`'s entries idle at least `idle`, taken in here; returns the
    /// cursor of the next page. With `justIDs` the claim counts no delivery, and the entries are
    /// fetched apart.
    private func claimPage(of stream: String, idle: Duration, from cursor: String, justIDs: Bool = false,
                           saying what: Logger.Message) async throws -> String {
        var command = RedisCommand(
            "XAUTOCLAIM", stream, settings.group, settings.consumer, idle.redisMilliseconds, cursor, "COUNT", settings.batch)
        let next: String, entries: [StreamReplyEntry]
        if justIDs {
            command.append("JUSTID")
            let claimed = try StreamReplies.autoClaimIDs(try await client.send(command))
            (next, entries) = (claimed.cursor, try await intake.fetch(claimed.ids, of: stream))
        } else {
            let claimed = try StreamReplies.autoClaim(try await client.send(command))
            (next, entries) = (claimed.cursor, claimed.entries)
        }
        if !entries.isEmpty {
            metrics.reclaimed(entries.count)
            logger.info(what, metadata: ["stream": "\(stream)", "count": "\(entries.count)"])
            // No backpressure wait here: the queue may be full of later messages that wait for
            // exactly these (a dead worker's), so holding them back would deadlock the channel.
            await intake.acceptRedelivered(entries.map { (stream, $0) })
        }
        return next
    }
}
