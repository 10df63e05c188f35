/// What the timeline picture shows: one lane per worker with the channels it was inside over
/// time, and the faults injected. Built from the audit trail; drawn by ``TimelineSVG``.
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

    public struct Lane: Sendable, Equatable {
        public var worker: String
        public var startedMicros: Int64
        public var endedMicros: Int64?
        public var segments: [Segment]
    }

    public var startMicros: Int64
    public var endMicros: Int64
    public var lanes: [Lane]
    public var faults: [FaultEvent]

    /// Lanes come in the order workers started; consumers seen only in the audit trail follow.
    public init(attempts: [Attempt], workers: [WorkerSpan], faults: [FaultEvent], startMicros: Int64? = nil, endMicros: Int64? = nil) {
        let byWorker = Dictionary(grouping: attempts, by: \.consumer)
        var spans = workers
        for name in byWorker.keys.sorted() where !spans.contains(where: { $0.name == name }) {
            let first = byWorker[name]?.map(\.enterMicros).min() ?? 0
            spans.append(WorkerSpan(name: name, startedMicros: first))
        }
        lanes = spans.map { span in
            let segments = (byWorker[span.name] ?? []).sorted { $0.enterMicros < $1.enterMicros }.map { attempt in
                Segment(channel: attempt.channel, fence: attempt.fence, seq: attempt.seq, startMicros: attempt.enterMicros,
                        endMicros: max(attempt.endMicros, attempt.enterMicros), ending: Self.ending(of: attempt))
            }
            return Lane(worker: span.name, startedMicros: span.startedMicros, endedMicros: span.endedMicros, segments: segments)
        }
        self.faults = faults
        let times = attempts.flatMap { [$0.enterMicros, $0.endMicros] } + workers.map(\.startedMicros)
            + faults.flatMap { [$0.atMicros, $0.untilMicros ?? $0.atMicros] }
        self.startMicros = startMicros ?? times.min() ?? 0
        self.endMicros = max(endMicros ?? times.max() ?? 0, self.startMicros + 1)
    }

    static func ending(of attempt: Attempt) -> Segment.Ending {
        switch attempt.outcome {
        case .applied: return .applied
        case .duplicate, .gap: return .duplicate
        case .lost, .stale: return .refused
        case .leaseLost: return .abandoned
        case nil: return attempt.status == .cancelled ? .abandoned : .unknown
        }
    }

    /// The worker that held a stolen lease, found through the lease's fence.
    public func victim(of fault: FaultEvent) -> String? {
        if let worker = fault.worker { return worker }
        guard let stolen = fault.stolen else { return nil }
        return lanes.first { lane in
            lane.segments.contains { $0.channel == stolen.channel && $0.fence == stolen.fence }
        }?.worker
    }
}
