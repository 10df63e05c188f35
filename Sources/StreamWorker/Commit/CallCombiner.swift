import Synchronization

/// Coalesces concurrent calls into batches, per group: the first call of an idle group is sent at
/// once, alone, so batching adds no wait when nothing else is going on; calls that arrive while a
/// batch of their group is in flight wait and go together in the next batch (group commit).
final class CallCombiner<Request: Sendable, Response: Sendable>: Sendable {
    typealias Send = @Sendable ([Request]) async -> [Result<Response, any Error>]

    private struct Waiting: Sendable {
        var request: Request
        var continuation: CheckedContinuation<Response, any Error>
    }

    private struct Group: Sendable {
        var inFlight = false
        var waiting: [Waiting] = []
    }

    private let groups = Mutex<[String: Group]>([:])
    private let maxBatch: Int
    private let send: Send

    /// - Parameters:
    ///   - maxBatch: at most this many requests go in one batch.
    ///   - send: sends a batch; returns one result per request, in order.
    init(maxBatch: Int, send: @escaping Send) {
        self.maxBatch = max(1, maxBatch)
        self.send = send
    }

    /// Sends `request` with the others of `group` that are waiting; returns its own result. The
    /// batch is sent even if the caller is cancelled meanwhile (what it carries must complete).
    func call(_ request: Request, group: String) async throws -> Response {
        let idle = groups.withLock { groups in
            if groups[group]?.inFlight == true { return false }
            groups[group, default: Group()].inFlight = true
            return true
        }
        if idle {
            let result = await send([request]).first ?? .failure(CancellationError())
            next(group)
            return try result.get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let alone = groups.withLock { groups in
                if groups[group]?.inFlight == true {
                    groups[group]!.waiting.append(Waiting(request: request, continuation: continuation))
                    return false
                }
                // The batch in flight finished meanwhile: this one goes alone, as if idle.
                groups[group, default: Group()].inFlight = true
                return true
            }
            if alone { Task { await self.flush([Waiting(request: request, continuation: continuation)], group: group) } }
        }
    }

    /// Requests waiting now, summed over every group.
    var waitingCount: Int { groups.withLock { $0.values.reduce(0) { $0 + $1.waiting.count } } }

    private func flush(_ batch: [Waiting], group: String) async {
        let results = await send(batch.map(\.request))
        for (index, waiting) in batch.enumerated() {
            waiting.continuation.resume(with: index < results.count ? results[index] : .failure(CancellationError()))
        }
        next(group)
    }

    /// The batch of `group` in flight is done: sends what waits meanwhile as the next one, in its
    /// own task (the caller that sent the last one returns at once), or marks the group idle.
    private func next(_ group: String) {
        let batch: [Waiting] = groups.withLock { groups in
            guard var state = groups[group], !state.waiting.isEmpty else {
                groups[group] = nil
                return []
            }
            let batch = Array(state.waiting.prefix(maxBatch))
            state.waiting.removeFirst(batch.count)
            groups[group] = state
            return batch
        }
        if !batch.isEmpty { Task { await self.flush(batch, group: group) } }
    }
}
