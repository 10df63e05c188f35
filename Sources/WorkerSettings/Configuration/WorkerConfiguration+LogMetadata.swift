import Logging

extension WorkerConfiguration {
    /// The effective configuration as nested, typed log metadata, with every password shown as `***`:
    /// numbers stay numbers and durations are seconds (or milliseconds where the option is in ms),
    /// so a JSON log line carries it as an object a collector can query (`configuration.lock.ttl`).
    public var redactedMetadata: Logger.Metadata {
        func number(_ value: some BinaryInteger) -> Logger.Metadata.Value { .stringConvertible(Int64(value)) }
        func seconds(_ d: Duration) -> Logger.Metadata.Value {
            let (whole, atto) = d.components
            return .stringConvertible(Double(whole) + Double(atto) / 1e18)
        }
        func milliseconds(_ d: Duration) -> Logger.Metadata.Value {
            let (whole, atto) = d.components
            return .stringConvertible(whole * 1000 + atto / 1_000_000_000_000_000)
        }
        var redis: Logger.Metadata = [
            "url": .string(ConfigurationLoader.redactedURL(redisURL)),
            "password": .string(redisPassword == nil ? "(none)" : "***"),
        ]
        if let redisPasswordFile { redis["password-file"] = .string(redisPasswordFile) }
        var handlerMetadata: Logger.Metadata = ["kind": .string(handler.rawValue), "timeout": seconds(handlerTimeout)]
        if let handlerURL { handlerMetadata["url"] = .string(ConfigurationLoader.redactedWebhookURL(handlerURL)) }
        var metrics: Logger.Metadata = ["host": .string(metricsHost)]
        if let metricsPort { metrics["port"] = number(metricsPort) }
        return [
            "redis": .dictionary(redis),
            "stream": .array(streams.map { .string($0) }),
            "group": .string(group),
            "consumer": .string(consumer),
            "channel-field": .string(channelField),
            "key-prefix": .string(keyPrefix),
            "read": .dictionary(["batch": number(batch), "block-ms": milliseconds(blockTime), "max-entry-bytes": number(maxEntryBytes)]),
            "processing": .dictionary([
                "concurrency": number(concurrency), "max-deliveries": number(maxDeliveries), "gap-timeout": seconds(gapTimeout),
                "history-max": number(historyMax), "work-ms": milliseconds(workTime), "shutdown-grace": seconds(shutdownGrace),
            ]),
            "lock": .dictionary(["ttl": seconds(lockTTL), "claim-idle": seconds(claimIdle)]),
            "handler": .dictionary(handlerMetadata),
            "log": .dictionary(["level": .string(logLevel.rawValue), "format": .string(logFormat.rawValue)]),
            "metrics": .dictionary(metrics),
        ]
    }
}
