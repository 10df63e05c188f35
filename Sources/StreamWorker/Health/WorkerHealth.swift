import RedisClient
import Synchronization

/// Whether the worker can do its job right now: connected to Redis, with its consumer group in place.
public enum WorkerReadiness: Sendable, Equatable {
    case ready
    /// Not ready, with a reason for an operator (never a password).
    case notReady(String)

    public var isReady: Bool { self == .ready }
}

/// The readiness rule as a plain value: fed by what the reader and the group sampler see, no I/O.
///
/// Ready means: started (the groups were created or found), the last exchange with Redis worked,
/// no stream is known to miss its group, and not shutting down. The newest observation wins, so
/// a Redis that comes back makes the worker ready again with its next successful read.
struct ReadinessState: Sendable, Equatable {
    enum Phase: Sendable, Equatable { case starting, running, stopping }

    private(set) var phase = Phase.starting
    /// What went wrong in the last exchange with Redis, if it failed.
    private(set) var redisProblem: String?
    /// Streams whose group was found missing.
    private(set) var missingGroups: Set<String> = []
    let group: String

    init(group: String) {
        self.group = group
    }

    var readiness: WorkerReadiness {
        switch phase {
        case .starting: return .notReady("starting: consumer group '\(group)' not yet created")
        case .stopping: return .notReady("shutting down")
        case .running: break
        }
        if !missingGroups.isEmpty {
            return .notReady("consumer group '\(group)' does not exist on \(missingGroups.sorted().joined(separator: ", "))")
        }
        if let redisProblem { return .notReady(redisProblem) }
        return .ready
    }

    mutating func groupsEnsured() {
        guard phase == .starting else { return }
        phase = .running
        redisProblem = nil
        missingGroups = []
    }

    /// An XREADGROUP over `streams` answered: Redis is reachable and their groups exist.
    mutating func readSucceeded(streams: some Sequence<String>) {
        redisProblem = nil
        missingGroups.subtract(streams)
    }

    mutating func readFailed(streams: some Sequence<String>, error: any Error) {
        if Self.isMissingGroup(error) {
            missingGroups.formUnion(streams)
        } else {
            redisProblem = "Redis read failed: \(error)"
        }
    }

    /// One sampling of the group's stats: which streams still have the group.
    mutating func sampled(groupExists: [String: Bool]) {
        redisProblem = nil
        for (stream, exists) in groupExists {
            if exists { missingGroups.remove(stream) } else { missingGroups.insert(stream) }
        }
    }

    mutating func sampleFailed(error: any Error) {
        redisProblem = "Redis unreachable: \(error)"
    }

    mutating func stopping() {
        phase = .stopping
    }

    /// NOGROUP: the group (or its stream) was deleted under us.
    static func isMissingGroup(_ error: any Error) -> Bool {
        (error as? RedisError)?.serverCode == "NOGROUP"
    }
}

/// The worker's readiness, updated by its read loop and its group sampler, read by health probes.
/// Reading it costs a lock, never a round trip to Redis.
public final class WorkerHealth: Sendable {
    private let state: Mutex<ReadinessState>

    public init(group: String) {
        state = Mutex(ReadinessState(group: group))
    }

    public var readiness: WorkerReadiness { state.withLock { $0.readiness } }

    func update(_ change: (inout ReadinessState) -> Void) {
        state.withLock { change(&$0) }
    }
}
