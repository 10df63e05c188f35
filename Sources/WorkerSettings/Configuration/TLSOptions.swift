import Foundation
import RedisClient

/// The `tls-*` options: they shape a `rediss://` connection and are refused with any other URL,
/// where they would silently do nothing.
extension ConfigurationLoader {
    static let tlsOptions: [ConfigurationOption] = [
        .tlsCAFile, .tlsCertFile, .tlsKeyFile, .tlsServerName, .tlsInsecureSkipVerify,
    ]

    /// The TLS settings for `redisURL`: `nil` unless it is `rediss://`. Files must exist and be readable
    /// now, so a typo stops the worker at start rather than failing every connect.
    func tls(redisURL: String) throws(ConfigurationError) -> RedisTLSConfiguration? {
        guard redisURL.lowercased().hasPrefix("rediss://") || redisURL.lowercased().hasPrefix("rediss+cluster://") else {
            if let option = Self.tlsOptions.first(where: isSet), let setting = setting(option) {
                throw .conflict(
                    option: option.rawValue, message: "is only used with a rediss:// redis-url", source: setting.source)
            }
            return nil
        }
        var tls = RedisTLSConfiguration()
        tls.caFile = try tlsFile(.tlsCAFile)
        tls.certificateFile = try tlsFile(.tlsCertFile)
        tls.keyFile = try tlsFile(.tlsKeyFile)
        if (tls.certificateFile == nil) != (tls.keyFile == nil) {
            let given: ConfigurationOption = tls.certificateFile == nil ? .tlsKeyFile : .tlsCertFile
            let missing: ConfigurationOption = tls.certificateFile == nil ? .tlsCertFile : .tlsKeyFile
            throw .conflict(
                option: given.rawValue, message: "needs \(missing.rawValue) as well (mutual TLS takes both)",
                source: setting(given)?.source ?? .defaults)
        }
        if isSet(.tlsServerName) {
            tls.serverName = try string(.tlsServerName, default: "", allowWhitespace: false)
        }
        let skipVerify = try boolean(.tlsInsecureSkipVerify, default: false)
        tls.verifiesPeer = !skipVerify
        return tls
    }

    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    func boolean(_ option: ConfigurationOption, default fallback: Bool) throws(ConfigurationError) -> Bool {
        guard let (value, source) = try scalar(option) else { return fallback }
        switch value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw .invalidValue(option: option.rawValue, value: value, expected: "true or false", source: source)
        }
    }

    /// The path in `option`, checked to be a readable file.
    private func tlsFile(_ option: ConfigurationOption) throws(ConfigurationError) -> String? {
        guard isSet(option) else { return nil }
        let path = try string(option, default: "")
        let source = setting(option)?.source ?? .defaults
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile(option: option.rawValue, path: path, source: source)
        }
        guard !isDirectory.boolValue else {
            throw .unreadableFile(option: option.rawValue, path: path, reason: "it is a directory", source: source)
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw .unreadableFile(option: option.rawValue, path: path, reason: "permission denied", source: source)
        }
        return path
    }
}

extension WorkerConfiguration {
    /// The `tls-*` options' effective values, for the start-up summary.
    var tlsOptionLines: [(String, String)] {
        [
            ("tls-ca-file", tls?.caFile ?? "(none)"),
            ("tls-cert-file", tls?.certificateFile ?? "(none)"),
            ("tls-key-file", tls?.keyFile ?? "(none)"),
            ("tls-server-name", tls?.serverName ?? "(none)"),
            ("tls-insecure-skip-verify", tls.map { $0.verifiesPeer ? "false" : "true" } ?? "false"),
        ]
    }

    /// The client configuration for ``redisURL``, with the password and TLS settings applied.
    public func redisConfiguration() throws(RedisError) -> RedisConfiguration {
        var redis = try RedisConfiguration(url: redisURL)
        if let redisPassword { redis.password = redisPassword }
        redis.tls = tls
        return redis
    }
}
