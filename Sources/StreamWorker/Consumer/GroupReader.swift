import Logging
import RedisClient

/// The consumer group's reader: XREADGROUP on a dedicated connection over every stream this worker
/// reads (with partitions, those whose lease it holds), its own pending entries first, then new ones.
///
/// On a Redis Cluster one XREADGROUP may not name streams of different slots, so each partition
/// stream has a reader of its own (`onlyStream`), on a connection to the primary that serves it;
/// when the slot moves or its primary fails, the reader takes a connection to the new owner.
struct GroupReader: Sendable {
    let client: RedisClient
    let settings: WorkerConfiguration
    let dispatcher: ChannelDispatcher
    let intake: EntryIntake
    let health: WorkerHealth
    /// The partition streams held here; nil with one partition, where every worker reads the stream.
    let readSet: ReadSet?
    /// Read only this stream (a cluster's partition stream), when it is in the read set.
    var onlyStream: String? = nil
    let logger: Logger

    /// Thrown out of a cluster reader's connection when the stream's slot lives elsewhere now.
    private struct Relocate: Error {}

    func run() async {
        // Own pending entries first (after a restart), from the start of the PEL, then new ones.
        // Partitioned, a partition's pending entries are taken over when its lease is acquired instead.
        var pendingCursor: [String: String] = readSet == nil
            ? Dictionary(uniqueKeysWithValues: settings.streams.map { ($0, "0") }) : [:]
        // A read that failed or was cut short, whose deliveries are taken in before the next read.
        var unreceived: (streams: [String], since: ContinuousClock.Instant)?
        // The newest id each stream's `>` reads returned: what a lost read delivered comes after it.
        var received: [String: String] = [:]
        var backoff = Duration.milliseconds(100)
        relocating: while !Task.isCancelled {
        do {
            try await client.withDedicatedConnection(forKey: onlyStream) { connection in
                while !Task.isCancelled {
                    await dispatcher.waitForCapacity()
                    if Task.isCancelled { return }
                    var version = 0
                    var current = settings.streams
                    if let readSet {
                        (version, current) = readSet.snapshot
                        if let onlyStream { current = current.filter { $0 == onlyStream } }
                        if current.isEmpty {
                            // Owning nothing is normal in a pool larger than the partition count.
                            try? await Task.sleep(for: .milliseconds(50))
                            continue
                        }
                        pendingCursor = pendingCursor.filter { current.contains($0.key) }
                    }
                    if let lost = unreceived {
                        unreceived = nil
                        await recover(lost.streams.filter { current.contains($0) }, since: lost.since, after: received)
                    }
                    let readingPending = !pendingCursor.isEmpty
                    let streams = readingPending ? Array(pendingCursor.keys).sorted() : current
                    var command = RedisCommand("XREADGROUP", "GROUP", settings.group, settings.consumer,
                                               "COUNT", settings.batch)
                    if !readingPending {
                        let block = settings.blockTime
                        command.append("BLOCK")
                        command.append(Int(block.redisMilliseconds))
                        command.blockTime = block
                    }
                    command.append("STREAMS")
                    for stream in streams { command.append(stream) }
                    for stream in streams { command.append(readingPending ? pendingCursor[stream]! : ">") }
                    var entries: [(stream: String, entry: StreamReplyEntry)]
                    let readStart = ContinuousClock.now
                    do {
                        let read = command, readVersion = version
                        // Cancelled at shutdown, or when the owned partitions change: the blocked read is
                        // aborted (its connection dropped).
                        let interrupted: @Sendable () -> Bool = { readSet.map { $0.version != readVersion } ?? false }
                        let reply = if let readSet, !readingPending {
                            // Marked while in flight: a shed partition's lease is released only once
                            // no read of it is left that Redis could still hand a new entry.
                            try await readSet.reading(streams) {
                                try await Self.withInterrupt(when: interrupted) { try await connection.send(read) }
                            }
                        } else {
                            try await Self.withInterrupt(when: interrupted) { try await connection.send(read) }
                        }
                        entries = try StreamReplies.readGroup(reply)
                        backoff = .milliseconds(100)
                        health.update { $0.readSucceeded(streams: streams) }
                    } catch {
                        if Task.isCancelled { return }
                        // Redis may have delivered entries whose reply never came: they are pending here.
                        if !readingPending {
                            unreceived = (Array(Set(streams).union(unreceived?.streams ?? [])), unreceived?.since ?? readStart)
                        }
                        if let readSet, readSet.version != version { continue }
                        health.update { $0.readFailed(streams: streams, error: error) }
                        logger.warning("Read failed; retrying", metadata: ["error": "\(error)", "retry_in_ms": "\(backoff.redisMilliseconds)"])
                        try? await Task.sleep(for: backoff)
                        backoff = min(backoff * 2, .seconds(5))
                        // UNBLOCKED: the node was demoted to a replica while the read blocked.
                        if client.isCluster, ClusterRedirect(error) != nil || (error as? RedisError)?.isConnectionError == true
                            || (error as? RedisError)?.serverCode == "UNBLOCKED" {
                            throw Relocate()
                        }
                        continue
                    }
                    if !readingPending {
                        for entry in entries { received[entry.stream] = entry.entry.id }
                    }
                    if let readSet {
                        // A partition whose lease went meanwhile is the next owner's: leave its entries pending.
                        entries.removeAll { !readSet.contains($0.stream) }
                    }
                    if readingPending {
                        var seen = Set<String>()
                        for entry in entries {
                            seen.insert(entry.stream)
                            pendingCursor[entry.stream] = entry.entry.id
                        }
                        for stream in streams where !seen.contains(stream) { pendingCursor[stream] = nil }
                        await intake.acceptRedelivered(entries)
                    } else {
                        await intake.accept(entries.map {
                            EntryIntake.Entry(stream: $0.stream, id: $0.entry.id, fields: $0.entry.fields, deliveries: 1)
                        })
                    }
                }
            }
            return
        } catch is Relocate {
            continue relocating
        } catch {
            logger.error("Reader stopped", metadata: ["error": "\(error)"])
            return
        }
        }
    }

    /// Takes in what a failed or interrupted read delivered (``EntryIntake/acceptUnreceived(streams:since:after:)``);
    /// what this cannot find now, the reclaimer finds after claim-idle.
    private func recover(_ streams: [String], since start: ContinuousClock.Instant, after received: [String: String]) async {
        guard !streams.isEmpty else { return }
        do {
            try await intake.acceptUnreceived(streams: streams, since: start, after: received)
        } catch {
            logger.warning("Taking in what a failed read delivered failed; the reclaimer takes it after claim-idle",
                           metadata: ["streams": "\(streams)", "error": "\(error)"])
        }
    }

    /// Runs `body`, cancelling it as soon as `interrupt` says so.
    static func withInterrupt<T: Sendable>(
        when interrupt: @escaping @Sendable () -> Bool, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !interrupt() { try await Task.sleep(for: .milliseconds(20)) }
                return nil
            }
            while let next = try await group.next() {
                group.cancelAll()
                if let value = next { return value }
                throw CancellationError()
            }
            throw CancellationError()
        }
    }
}
