/// What the timeline picture shows: one lane per worker slot with the channels its process was
/// inside over time, and the faults injected. Built from the audit trail; drawn by ``TimelineSVG``.
///
/// A worker started in place of a killed one (a kill fault's `replacement`) continues the killed
/// worker's lane, so the picture has as many lanes as the pool has slots, however many restarts.
public struct Timeline: Sendable, Equatable {
    /// A worker process's life, as the run saw it.
    public struct WorkerSpan: Sendable, Equatable {
        public var name: String
        public var startedMicros: Int64
        /// When it was killed or stopped; nil if it ran to the end.
        public var endedMicros: Int64?

        public init(name: String, startedMicros: Int64, endedMicros: Int64? = nil) {
            self.name = name
            self.startedMicros = startedMicros
            self.endedMicros = endedMicros
        }
    }

    /// One stay inside a channel.
    public struct Segment: Sendable, Equatable {
        public enum Ending: String, Sendable {
            case applied, duplicate
            /// The store refused the late commit (`lost` or `stale`).
            case refused
            /// The holder saw its lease end and was cancelled before committing.
            case abandoned
            /// No commit recorded (killed, failed, or the reply was lost).
            case unknown
        }

        public var channel: String
        public var fence: Int64
        public var seq: Int64?
        public var startMicros: Int64
        public var endMicros: Int64
        public var ending: Ending
    }

    /// One worker slot: the process that started it and each replacement after a kill, in order.
    public struct Lane: Sendable, Equatable {
        /// The processes of this lane, each with its life span; never empty.
        public var spans: [WorkerSpan]
        public var segments: [Segment]

        /// The first process's name, which names the lane.
        public var worker: String { spans[0].name }
        public var workers: [String] { spans.map(\.name) }
        public var startedMicros: Int64 { spans[0].startedMicros }
        public var endedMicros: Int64? { spans[spans.count - 1].endedMicros }
    }

    public var startMicros: Int64
    public var endMicros: Int64
    public var lanes: [Lane]
    public var faults: [FaultEvent]
    /// Partition leases over the run; empty for the single-stream layout.
    public var ownership: PartitionOwnershipTrail

    /// Lanes come in the order workers started; consumers seen only in the audit trail follow.
    public init(attempts: [Attempt], workers: [WorkerSpan], faults: [FaultEvent], ownership: PartitionOwnershipTrail = .init(),
                startMicros: Int64? = nil, endMicros: Int64? = nil) {
        let byWorker = Dictionary(grouping: attempts, by: \.consumer)
        var spans = workers
        for name in byWorker.keys.sorted() where !spans.contains(where: { $0.name == name }) {
            let first = byWorker[name]?.map(\.enterMicros).min() ?? 0
            spans.append(WorkerSpan(name: name, startedMicros: first))
        }
        // Who replaced whom: a replacement joins the lane of the worker it replaced.
        var replaced: [String: String] = [:]
        for fault in faults where fault.kind == .kill {
            if let victim = fault.worker, let replacement = fault.replacement { replaced[replacement] = victim }
        }
        var lanes: [Lane] = []
        for span in spans {
            if let victim = replaced[span.name], let index = lanes.firstIndex(where: { $0.spans.last?.name == victim }) {
                lanes[index].spans.append(span)
            } else {
                lanes.append(Lane(spans: [span], segments: []))
            }
        }
        for index in lanes.indices {
            lanes[index].segments = lanes[index].workers.flatMap { byWorker[$0] ?? [] }
                .sorted { $0.enterMicros < $1.enterMicros }
                .map { attempt in
                    Segment(channel: attempt.channel, fence: attempt.fence, seq: attempt.seq, startMicros: attempt.enterMicros,
                            endMicros: max(attempt.endMicros, attempt.enterMicros), ending: Self.ending(of: attempt))
                }
        }
        self.lanes = lanes
        self.faults = faults
        self.ownership = ownership
        let times = attempts.flatMap { [$0.enterMicros, $0.endMicros] } + workers.map(\.startedMicros)
            + faults.flatMap { [$0.atMicros, $0.untilMicros ?? $0.atMicros] }
        self.startMicros = startMicros ?? times.min() ?? 0
        self.endMicros = max(endMicros ?? times.max() ?? 0, self.startMicros + 1)
    }

    /// How many worker processes the lanes hold (more than the lanes when workers were replaced).
    public var processCount: Int { lanes.reduce(0) { $0 + $1.spans.count } }

    /// Channel names in the order they first appear.
    public var channels: [String] {
        var seen: Set<String> = []
        return lanes.flatMap(\.segments).sorted { $0.startMicros < $1.startMicros }.map(\.channel).filter { seen.insert($0).inserted }
    }

    static func ending(of attempt: Attempt) -> Segment.Ending {
        switch attempt.outcome {
        case .applied: return .applied
        case .duplicate, .gap, .skipped: return .duplicate
        case .lost, .stale: return .refused
        case .leaseLost: return .abandoned
        case nil: return attempt.status == .cancelled ? .abandoned : .unknown
        }
    }

    /// The worker that held a stolen lease, found through the lease's fence.
    public func victim(of fault: FaultEvent) -> String? {
        if let worker = fault.worker { return worker }
        guard let stolen = fault.stolen else { return nil }
        for lane in lanes {
            guard let segment = lane.segments.first(where: { $0.channel == stolen.channel && $0.fence == stolen.fence }) else { continue }
            // The process of the lane that was alive when the segment started.
            return lane.spans.last { $0.startedMicros <= segment.startMicros }?.name ?? lane.worker
        }
        return nil
    }

    /// The lane holding `worker`'s process.
    public func laneIndex(of worker: String) -> Int? {
        lanes.firstIndex { $0.workers.contains(worker) }
    }
}
