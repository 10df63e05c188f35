/// A fault as it was injected during a run.
public struct FaultEvent: Sendable, Equatable, Codable {
    public var kind: FaultKind
    /// Wall-clock microseconds, comparable with the audit trail's timestamps.
    public var atMicros: Int64
    /// When the fault's effect ended (SIGCONT of a pause, Redis answering again after a restart).
    public var untilMicros: Int64?
    /// The consumer hit (kill, pause, connkill).
    public var worker: String?
    /// The consumer started in place of a killed one.
    public var replacement: String?
    /// The lease taken away by a steal: its channel and the fence its holder had.
    public var stolen: FenceKey?
    /// What happened, for people: "DEL sg:lock:channel:ch3", "killed 3 connections".
    public var detail: String

    public init(kind: FaultKind, atMicros: Int64, untilMicros: Int64? = nil, worker: String? = nil, replacement: String? = nil,
                stolen: FenceKey? = nil, detail: String) {
        self.kind = kind
        self.atMicros = atMicros
        self.untilMicros = untilMicros
        self.worker = worker
        self.replacement = replacement
        self.stolen = stolen
        self.detail = detail
    }
}
