import Synchronization

/// The partition streams the reader reads right now. The coordinator changes it; the reader takes a
/// snapshot per read and drops what it read from a stream that left the set meanwhile.
final class ReadSet: Sendable {
    private struct State {
        var version = 0
        var streams: Set<String> = []
        /// Streams a blocking `>` read in flight covers (a count per stream: one reader per node on a cluster).
        var beingRead: [String: Int] = [:]
    }
    private let state = Mutex(State())

    var version: Int { state.withLock { $0.version } }

    /// The streams in a stable order, and the version they belong to.
    var snapshot: (version: Int, streams: [String]) {
        state.withLock { ($0.version, $0.streams.sorted()) }
    }

    func contains(_ stream: String) -> Bool { state.withLock { $0.streams.contains(stream) } }

    func add(_ streams: [String]) {
        state.withLock { s in
            s.streams.formUnion(streams)
            s.version += 1
        }
    }

    func remove(_ streams: [String]) {
        state.withLock { s in
            s.streams.subtract(streams)
            s.version += 1
        }
    }

    /// Runs a read of `streams` that can deliver new entries, marked as in flight until it ends.
    func reading<T>(_ streams: [String], _ read: () async throws -> T) async rethrows -> T {
        state.withLock { s in for stream in streams { s.beingRead[stream, default: 0] += 1 } }
        defer {
            state.withLock { s in
                for stream in streams {
                    let left = (s.beingRead[stream] ?? 1) - 1
                    s.beingRead[stream] = left > 0 ? left : nil
                }
            }
        }
        return try await read()
    }

    /// Waits until no read in flight covers `streams` (after ``remove(_:)`` interrupted it), at most
    /// `timeout`; false when one still does. Until then Redis may still hand such a read a new entry
    /// of a stream, which the next owner's take-over would miss.
    func waitUntilUnread(_ streams: [String], timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ s in streams.contains { s.beingRead[$0] != nil } }) {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }
}
