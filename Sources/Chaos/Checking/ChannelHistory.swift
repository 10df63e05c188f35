import Foundation

/// The seqs a channel's history list recorded, in list order (oldest first).
public enum ChannelHistory {
    /// Decodes `HistoryHandler` entries (`{"id", "seq", "fields"}`); entries without a numeric seq are skipped.
    public static func seqs(fromEntries entries: [[UInt8]]) -> [Int64] {
        entries.compactMap { bytes in
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
            return (object["seq"] as? NSNumber)?.int64Value
        }
    }
}
