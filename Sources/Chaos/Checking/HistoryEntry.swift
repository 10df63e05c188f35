import Foundation

/// One entry of a channel's history list, as `HistoryHandler` writes it.
public struct HistoryEntry: Sendable, Equatable {
    public var seq: Int64
    /// The lease the entry was applied under; nil in entries written before fences were recorded.
    public var fence: Int64?

    public init(seq: Int64, fence: Int64? = nil) {
        self.seq = seq
        self.fence = fence
    }

    /// Decodes `{"id", "seq", "fields", "fence"}` objects, oldest first; entries without a numeric seq are skipped.
    public static func decode(_ entries: [[UInt8]]) -> [HistoryEntry] {
        entries.compactMap { bytes in
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                  let seq = (object["seq"] as? NSNumber)?.int64Value else { return nil }
            return HistoryEntry(seq: seq, fence: (object["fence"] as? NSNumber)?.int64Value)
        }
    }
}
