/// A stream or its consumer group that a command needs is missing (inspect, replay reset).
public enum StreamGroupError: Error, Sendable, CustomStringConvertible {
    case noStream(String)
    case noGroup(stream: String, group: String)

    public var description: String {
        switch self {
        case .noStream(let s): return "stream '\(s)' does not exist"
        case .noGroup(let s, let g): return "stream '\(s)' has no consumer group '\(g)'"
        }
    }
}
