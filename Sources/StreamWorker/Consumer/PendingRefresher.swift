import RedisClient

/// Keeps the entries this worker holds from looking idle to the reclaimers of other workers.
struct PendingRefresher: Sendable {
    let client: RedisClient
    let settings: WorkerConfiguration
    let dispatcher: ChannelDispatcher

    /// Keeps every entry this worker has accepted (queued or running) from looking idle, with
    /// XCLAIM … JUSTID to ourselves, which does not count as a delivery. Without it a long queue
    /// or a long turn would be reclaimed by another worker, or even dead-lettered. During shutdown
    /// only the running turns are left to refresh; it stops when they are done.
    func run() async {
        let interval = max(settings.claimIdle / 4, .milliseconds(50))
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            for (stream, ids) in await dispatcher.inFlightEntries where !ids.isEmpty {
                let all = Array(ids)
                for start in stride(from: 0, to: all.count, by: 500) {
                    var command = RedisCommand("XCLAIM", stream, settings.group, settings.consumer, 0)
                    for id in all[start..<min(start + 500, all.count)] { command.append(id) }
                    command.append("JUSTID")
                    _ = try? await client.send(command)
                }
            }
        }
    }
}
