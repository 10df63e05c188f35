/// Hooks into the life of a client's connections, for metrics and health.
///
/// They run on a connection's I/O thread: they must return quickly and never block or suspend.
public struct RedisConnectionEvents: Sendable {
    /// A connection that had been connected before is connected again (after a drop or a failed attempt).
    public var reconnected: (@Sendable () -> Void)?
    /// A connection attempt failed; the next one follows after a backoff.
    public var connectFailed: (@Sendable () -> Void)?

    public init(reconnected: (@Sendable () -> Void)? = nil, connectFailed: (@Sendable () -> Void)? = nil) {
        self.reconnected = reconnected
        self.connectFailed = connectFailed
    }
}
