/// Who held each partition's lease over a chaos run, from samples taken while it ran; drawn
/// beside the channel locks in the timeline and summarised in the report.
public struct PartitionOwnershipTrail: Sendable, Equatable {
    /// One holder's stay on one partition.
    public struct Span: Sendable, Equatable {
        public var partition: Int
        public var owner: String
        public var startMicros: Int64
        public var endMicros: Int64

        public init(partition: Int, owner: String, startMicros: Int64, endMicros: Int64) {
            self.partition = partition
            self.owner = owner
            self.startMicros = startMicros
            self.endMicros = endMicros
        }
    }

    /// One look at every partition: its holder, or nil while no lease is held.
    public struct Sample: Sendable, Equatable {
        public var atMicros: Int64
        public var owners: [String?]

        public init(atMicros: Int64, owners: [String?]) {
            self.atMicros = atMicros
            self.owners = owners
        }
    }

    public var partitions: Int
    public var spans: [Span]

    public init(partitions: Int = 0, spans: [Span] = []) {
        self.partitions = partitions
        self.spans = spans
    }

    /// Spans from samples in time order: a holder's span runs from the first sample that saw it
    /// to the first that did not (or the last sample).
    public init(partitions: Int, samples: [Sample]) {
        self.partitions = partitions
        var spans: [Span] = []
        var open: [Int: Span] = [:]
        for sample in samples {
            for p in 0..<min(partitions, sample.owners.count) {
                let owner = sample.owners[p]
                if let current = open[p], current.owner != owner {
                    var closed = current
                    closed.endMicros = sample.atMicros
                    spans.append(closed)
                    open[p] = nil
                }
                if let owner, open[p] == nil {
                    open[p] = Span(partition: p, owner: owner, startMicros: sample.atMicros, endMicros: sample.atMicros)
                }
            }
        }
        let last = samples.last?.atMicros ?? 0
        for p in open.keys.sorted() {
            var closed = open[p]!
            closed.endMicros = last
            spans.append(closed)
        }
        self.spans = spans.sorted { ($0.partition, $0.startMicros) < ($1.partition, $1.startMicros) }
    }

    /// How often a partition passed from one holder to another.
    public var handovers: Int {
        var count = 0
        for p in 0..<partitions {
            let mine = spans.filter { $0.partition == p }
            count += zip(mine, mine.dropFirst()).filter { $0.0.owner != $0.1.owner }.count
        }
        return count
    }

    /// The longest time any partition had no holder between two holders, in microseconds.
    public var longestGapMicros: Int64 {
        var longest: Int64 = 0
        for p in 0..<partitions {
            let mine = spans.filter { $0.partition == p }
            for (a, b) in zip(mine, mine.dropFirst()) { longest = max(longest, b.startMicros - a.endMicros) }
        }
        return longest
    }
}
