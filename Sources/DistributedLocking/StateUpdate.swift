/// A declarative change to one target's state: hash fields to set, counters to increment,
/// and values to append to its capped list. Declarative so that a store can apply it
/// atomically together with the fence check.
public struct StateUpdate: Sendable, Equatable, Codable {
    public var setFields: [String: String]
    public var increment: [String: Int64]
    public var append: [String]
    /// Keep only the newest `listCap` list entries (nil: unbounded).
    public var listCap: Int?

    public init(setFields: [String: String] = [:], increment: [String: Int64] = [:], append: [String] = [], listCap: Int? = nil) {
        self.setFields = setFields
        self.increment = increment
        self.append = append
        self.listCap = listCap
    }

    public var isEmpty: Bool { setFields.isEmpty && increment.isEmpty && append.isEmpty }

    /// Field names the store manages itself.
    public static let reservedFields: Set<String> = ["fence", "last_id", "last_seq"]

    /// Rejects updates that would overwrite store-managed fields or use empty names.
    public func validate() throws(StateUpdateError) {
        // Checked in place: this runs for every message, and copying the keys cost more than the checks.
        for field in setFields.keys { try Self.check(field) }
        for field in increment.keys { try Self.check(field) }
        if setFields.keys.contains(where: { increment[$0] != nil }) {
            throw .conflictingField(setFields.keys.first(where: { increment[$0] != nil })!)
        }
        if let listCap, listCap <= 0 { throw .invalidListCap(listCap) }
        if increment.count > Self.maxIncrements { throw .tooManyIncrements(increment.count) }
        // With stored values below 10^18 (the scripts check), such a delta cannot overflow HINCRBY.
        if let (field, delta) = increment.first(where: { abs($0.value) > Self.maxIncrement }) {
            throw .incrementTooLarge(field, delta)
        }
    }

    private static func check(_ field: String) throws(StateUpdateError) {
        if field.isEmpty { throw .emptyFieldName }
        if reservedFields.contains(field) { throw .reservedField(field) }
    }

    /// 2^53: far beyond any counter, and small enough that HINCRBY cannot overflow.
    public static let maxIncrement: Int64 = 1 << 53

    /// Counters one update may increment: a commit reads them all in one HMGET, whose arguments
    /// Lua unpacks (at most 8,000).
    public static let maxIncrements = 4000

    /// The update as script arguments: counts first, then set pairs, increment pairs, appended values.
    /// Sorted, so the same update always encodes identically.
    public var scriptArguments: [String] {
        var arguments = [String(setFields.count), String(increment.count), String(append.count), String(listCap ?? 0)]
        for (field, value) in setFields.sorted(by: { $0.key < $1.key }) { arguments += [field, value] }
        for (field, delta) in increment.sorted(by: { $0.key < $1.key }) { arguments += [field, String(delta)] }
        arguments += append
        return arguments
    }
}

public enum StateUpdateError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyFieldName
    case reservedField(String)
    case conflictingField(String)
    case invalidListCap(Int)
    case incrementTooLarge(String, Int64)
    case tooManyIncrements(Int)

    public var description: String {
        switch self {
        case .emptyFieldName: return "state update has an empty field name"
        case .reservedField(let f): return "state field '\(f)' is managed by the store and cannot be written"
        case .conflictingField(let f): return "state field '\(f)' is both set and incremented"
        case .invalidListCap(let n): return "list cap \(n) must be positive"
        case .incrementTooLarge(let f, let d): return "increment \(d) of state field '\(f)' exceeds ±2^53"
        case .tooManyIncrements(let n): return "state update increments \(n) fields; at most \(StateUpdate.maxIncrements)"
        }
    }
}
