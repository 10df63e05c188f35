import Synchronization

/// The partition streams the reader reads right now. The coordinator changes it; the reader takes a
/// snapshot per read and drops what it read from a stream that left the set meanwhile.
final class ReadSet: Sendable {
    private struct State {
        var version = 0
        var streams: Set<String> = []
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
}
