import RedisClient

/// Commits the runs of many channels in one ``WorkerScripts/commit`` call: the runs that finish
/// while a commit of their partition is in flight go together in the next call. One call holds
/// one partition's keys only (one stream, so one Redis Cluster slot), and each run gets its own
/// outcome: one channel's lost lease, stale fence or failed check does not touch the others.
struct CommitBatcher: Sendable {
    /// At most this many channels per call, so no one script holds Redis for long.
    static let maxChannels = 64

    private let combiner: CallCombiner<RunCommit, RunCommit.Outcome>

    init(client: RedisClient) {
        combiner = CallCombiner(maxBatch: Self.maxChannels) { runs in
            do {
                return try await RunCommit.commit(runs, on: client)
            } catch {
                return runs.map { _ in .failure(error) }
            }
        }
    }

    func commit(_ run: RunCommit) async throws -> RunCommit.Outcome {
        try await combiner.call(run, group: run.keys[3])
    }
}
