/// What a readiness probe answers: 200, or 503 with the reason in the body.
public enum ProbeResult: Sendable, Equatable {
    case ok
    case unavailable(reason: String)
}
