/// The worker's key layout, all under one configurable prefix (default `sg`).
public struct WorkerKeys: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String = "sg") {
        self.prefix = prefix
    }

    public func lock(channel: String) -> String { "\(prefix):lock:channel:\(channel)" }
    public func fence(channel: String) -> String { "\(prefix):fence:channel:\(channel)" }
    public func state(channel: String) -> String { "\(prefix):state:channel:\(channel)" }
    public func history(channel: String) -> String { "\(prefix):history:channel:\(channel)" }
    public func seq(channel: String) -> String { "\(prefix):seq:channel:\(channel)" }
    /// Dead letters of `stream`.
    public static func deadLetters(of stream: String) -> String { stream + ":dead" }
}

extension WorkerKeys {
    /// Sequence numbers of a channel that were dead-lettered ahead of their turn.
    public func deadSeqs(channel: String) -> String { "\(prefix):deadseq:channel:\(channel)" }
}
