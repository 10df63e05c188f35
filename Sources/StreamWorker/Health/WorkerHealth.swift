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
/// Ready means: started (the groups were created or found), the reader's last read and the
/// sampler's last sample both worked, no stream is known to miss its group, and not shutting down.
/// Each source clears only its own problem, so a sampler that gets through cannot hide a reader
/// that does not (say, an ACL that refuses XREADGROUP). A Redis that comes back makes the worker
/// ready again with the next successful read and sample.
struct ReadinessState: Sendable, Equatable {
    enum Phase: Sendable, Equatable { case starting, running, stopping }

    private(set) var phase = Phase.starting
    /// What went wrong in the reader's last read, if it failed.
    private(set) var readProblem: String?
    /// What went wrong in the sampler's last sample, if it failed.
    private(set) var sampleProblem: String?
    /// Streams whose group was found missing.
    private(set) var missingGroups: Set<String> = []
    /// Why creating the group at start failed last (Redis down, a refused command); retried.
    private(set) var startProblem: String?
    let group: String

    init(group: String) {
        self.group = group
    }

    var readiness: WorkerReadiness {
        switch phase {
        case .starting: return .notReady("starting: consumer group '\(group)' not yet created" + (startProblem.map { ": \($0)" } ?? ""))
        case .stopping: return .notReady("shutting down")
        case .running: break
        }
        if !missingGroups.isEmpty {
            return .notReady("consumer group '\(group)' does not exist on \(missingGroups.sorted().joined(separator: ", "))")
        }
        if let problem = readProblem ?? sampleProblem { return .notReady(problem) }
        return .ready
    }

    mutating func startFailed(error: any Error) {
        startProblem = "\(error)"
    }

    mutating func groupsEnsured() {
        guard phase == .starting else { return }
        phase = .running
        readProblem = nil
        sampleProblem = nil
        missingGroups = []
    }

    /// An XREADGROUP over `streams` answered: Redis is reachable and their groups exist.
    mutating func readSucceeded(streams: some Sequence<String>) {
        readProblem = nil
        missingGroups.subtract(streams)
    }

    mutating func readFailed(streams: some Sequence<String>, error: any Error) {
        if Self.isMissingGroup(error) {
            missingGroups.formUnion(streams)
        } else {
            readProblem = "Redis read failed: \(error)"
        }
    }

    /// One sampling of the group's stats: which streams still have the group.
    mutating func sampled(groupExists: [String: Bool]) {
        sampleProblem = nil
        for (stream, exists) in groupExists {
            if exists { missingGroups.remove(stream) } else { missingGroups.insert(stream) }
        }
    }

    mutating func sampleFailed(error: any Error) {
        sampleProblem = "Redis unreachable: \(error)"
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
