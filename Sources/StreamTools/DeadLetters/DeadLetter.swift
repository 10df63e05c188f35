import StreamWorker

/// One entry of `<stream>:dead`, split into the worker's bookkeeping and the original fields
/// (stored there with an `f:` prefix; see docs/worker.md).
public struct DeadLetter: Sendable, Equatable {
    /// The id of the dead-letter entry itself.
    public var id: String
    public var originalID: String?
    public var stream: String?
    public var reason: String
    public var detail: String?
    public var deliveries: Int?
    public var consumer: String?
    public var timeMilliseconds: Int64?
    /// The original entry's fields, in order, with the `f:` prefix removed.
    public var fields: [StreamField]
    /// How many stream entries hold this dead letter (more than one beyond
    /// `WorkerScripts.deadLetterFieldsPerPart` fields; the rest follow it directly).
    public var parts = 1
    /// For a continuation entry: the id of the dead letter's first entry.
    public var continues: String?
    /// Continuation entries merged into this one (their ids), so a requeue deletes them too.
    public var continuationIDs: [String] = []

    static let fieldPrefix: [UInt8] = Array("f:".utf8)

    public init(id: String, entryFields: [StreamField]) {
        self.id = id
        reason = "unknown"
        fields = []
        for field in entryFields {
            if field.name.starts(with: Self.fieldPrefix) {
                fields.append(StreamField(name: Array(field.name.dropFirst(Self.fieldPrefix.count)), value: field.value))
                continue
            }
            let text = String(decoding: field.value, as: UTF8.self)
            switch String(decoding: field.name, as: UTF8.self) {
            case "original_id": originalID = text
            case "stream": stream = text
            case "reason": reason = text
            case "detail": detail = text
            case "deliveries": deliveries = Int(text)
            case "consumer": consumer = text
            case "time_ms": timeMilliseconds = Int64(text)
            case "parts": parts = max(1, Int(text) ?? 1)
            case "continues": continues = text
            default: break
            }
        }
    }

    /// Whether `entry` is the next part of this dead letter.
    func isContinued(by entry: DeadLetter) -> Bool {
        entry.continues == id && 1 + continuationIDs.count < parts
    }

    /// Appends a continuation entry's fields.
    mutating func merge(_ continuation: DeadLetter) {
        fields += continuation.fields
        continuationIDs.append(continuation.id)
    }

    /// Whether every part was found.
    public var isComplete: Bool { 1 + continuationIDs.count == parts }

    /// The value of the original field `name`, as bytes.
    public func field(_ name: String) -> [UInt8]? {
        let key = Array(name.utf8)
        return fields.first { $0.name == key }?.value
    }

    /// The channel, when the original entry had a readable one.
    public func channel(field name: String) -> String? {
        field(name).flatMap { String(validating: $0, as: UTF8.self) }
    }

    public var json: JSONValue {
        .object([
            ("id", .string(id)),
            ("original_id", JSONValue(originalID)),
            ("stream", JSONValue(stream)),
            ("reason", .string(reason)),
            ("detail", JSONValue(detail)),
            ("deliveries", deliveries.map { JSONValue($0) } ?? .null),
            ("consumer", JSONValue(consumer)),
            ("time_ms", JSONValue(timeMilliseconds)),
            ("fields", EntryCodec.fieldsJSON(fields)),
        ])
    }
}

/// The entry a requeue appends to the input stream: the original fields in their order, plus
/// a record of the requeue. Fields that record an earlier requeue are updated in place.
public struct RequeueEntry: Sendable, Equatable {
    /// The fields to append; when `seqIndex` is set, the value there is replaced by the
    /// channel's next seq inside the requeue script.
    public var fields: [StreamField]
    /// Index into `fields` of the `seq` value to restamp, or nil to keep every value.
    public var seqIndex: Int?
    /// The seq the dead letter carried, when it had a valid one.
    public var originalSeq: Int64?

    /// The dead-letter entry this came from.
    public static let requeuedFromField = "sg_requeued_from"
    /// How many times this message has been requeued, counting this one.
    public static let requeuesField = "sg_requeues"
    /// The seq before restamping.
    public static let originalSeqField = "sg_original_seq"

    /// - Parameter restampSeq: give the message a fresh seq (the dead-lettered one already
    ///   counts as done for its channel, so the worker would drop it as a duplicate).
    public init(deadLetter: DeadLetter, restampSeq: Bool, channelField: String = "channel_id") {
        var fields = deadLetter.fields
        let previous = deadLetter.field(Self.requeuesField).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
        func set(_ name: String, _ value: String) {
            let key = Array(name.utf8)
            if let i = fields.firstIndex(where: { $0.name == key }) {
                fields[i].value = Array(value.utf8)
            } else {
                fields.append(StreamField(name: key, value: Array(value.utf8)))
            }
        }
        let seqKey = Array("seq".utf8)
        let seqPosition = fields.firstIndex { $0.name == seqKey }
        let seq = seqPosition.flatMap { Int64(String(decoding: fields[$0].value, as: UTF8.self)) }.flatMap { $0 > 0 ? $0 : nil }
        originalSeq = seq
        set(Self.requeuedFromField, deadLetter.id)
        set(Self.requeuesField, String(previous + 1))
        // Only a valid seq of an entry with a channel can be restamped: an invalid one is what
        // the user has to see again, not something to paper over.
        if restampSeq, let seq, let seqPosition, deadLetter.channel(field: channelField) != nil {
            set(Self.originalSeqField, String(seq))
            seqIndex = seqPosition
        } else {
            seqIndex = nil
        }
        self.fields = fields
    }
}

/// Counts of dead letters by reason, most common first (ties by name, so output is stable).
public struct ReasonCounts: Sendable, Equatable {
    public private(set) var counts: [String: Int] = [:]
    public private(set) var total = 0

    public init() {}

    public mutating func add(_ reason: String) {
        counts[reason, default: 0] += 1
        total += 1
    }

    /// Adds the counts of another sample (another partition's dead letters).
    public mutating func merge(_ other: ReasonCounts) {
        for (reason, count) in other.counts { counts[reason, default: 0] += count }
        total += other.total
    }

    public func top(_ n: Int) -> [(reason: String, count: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(n).map { ($0.key, $0.value) }
    }
}
