import Foundation
import Yams

/// Where a configuration value came from; every ``ConfigurationError`` names one.
public enum ConfigurationSource: Sendable, Equatable, CustomStringConvertible {
    /// A command-line option, by name without dashes (`lock-ttl`).
    case flag(String)
    /// An environment variable (`SG_LOCK_TTL`).
    case environment(String)
    /// The YAML config file; `nil` when the YAML was given as text rather than a path.
    case file(String?)
    /// The built-in default.
    case defaults

    public var description: String {
        switch self {
        case .flag(let name): return "--\(name)"
        case .environment(let name): return name
        case .file(let path?): return path
        case .file(nil): return "config file"
        case .defaults: return "default"
        }
    }
}

/// Why a configuration could not be loaded. Messages name the option and the source, and never contain a password.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// A key the file (or a flag) does not know; `suggestion` is the closest valid key, if it is close.
    case unknownKey(String, suggestion: String?, source: ConfigurationSource)
    /// A value that does not parse or is out of range; `expected` completes "is not …".
    case invalidValue(option: String, value: String, expected: String, source: ConfigurationSource)
    /// `redis-url` is not a usable redis://, rediss:// or unix:// URL. `value` is already redacted.
    case invalidURL(value: String, reason: String, source: ConfigurationSource)
    /// A file named by `option` (`config` or `redis-password-file`) does not exist.
    case missingFile(option: String, path: String, source: ConfigurationSource)
    /// A file named by `option` exists but cannot be used.
    case unreadableFile(option: String, path: String, reason: String, source: ConfigurationSource)
    /// The config file is not YAML, or not a mapping of option to value.
    case invalidYAML(message: String, source: ConfigurationSource)
    /// Options that are each valid but not together.
    case conflict(option: String, message: String, source: ConfigurationSource)
    /// A password given where it would leak (a flag shows up in `ps`, a config file gets committed).
    case passwordNotAccepted(source: ConfigurationSource)

    /// The option the error is about.
    public var option: String {
        switch self {
        case .unknownKey(let key, _, _): return key
        case .invalidValue(let option, _, _, _): return option
        case .invalidURL: return "redis-url"
        case .missingFile(let option, _, _), .unreadableFile(let option, _, _, _): return option
        case .invalidYAML: return "config"
        case .conflict(let option, _, _): return option
        case .passwordNotAccepted: return "redis-password"
        }
    }

    /// Where the offending value came from.
    public var source: ConfigurationSource {
        switch self {
        case .unknownKey(_, _, let s), .invalidValue(_, _, _, let s), .invalidURL(_, _, let s),
             .missingFile(_, _, let s), .unreadableFile(_, _, _, let s), .invalidYAML(_, let s),
             .conflict(_, _, let s), .passwordNotAccepted(let s):
            return s
        }
    }

    public var description: String {
        switch self {
        case .unknownKey(let key, let suggestion, let source):
            let hint = suggestion.map { "; did you mean \"\($0)\"?" } ?? ""
            switch source {
            case .flag: return "\(key): unknown option --\(key)\(hint)"
            default: return "\(key): unknown key \"\(key)\" (from \(source))\(hint)"
            }
        case .invalidValue(let option, let value, let expected, let source):
            return "\(option): \"\(value)\" is not \(expected) (from \(source))"
        case .invalidURL(let value, let reason, let source):
            return "redis-url: \"\(value)\" is not a usable Redis URL: \(reason) (from \(source))"
        case .missingFile(let option, let path, let source):
            return "\(option): file \"\(path)\" does not exist (from \(source))"
        case .unreadableFile(let option, let path, let reason, let source):
            return "\(option): cannot use file \"\(path)\": \(reason) (from \(source))"
        case .invalidYAML(let message, let source):
            // The parser's message spans lines, so the source goes first where it cannot get lost.
            return "config: not valid worker YAML (from \(source)): \(message)"
        case .conflict(let option, let message, let source):
            return "\(option): \(message) (from \(source))"
        case .passwordNotAccepted(let source):
            return "redis-password: not accepted from here, where it would leak; "
                + "use SG_REDIS_PASSWORD or redis-password-file (from \(source))"
        }
    }
}

/// The options, by their CLI/YAML name. `SG_` + upper-snake-case gives the environment variable.
enum ConfigurationOption: String, CaseIterable {
    case redisURL = "redis-url"
    case redisPasswordFile = "redis-password-file"
    case tlsCAFile = "tls-ca-file"
    case tlsCertFile = "tls-cert-file"
    case tlsKeyFile = "tls-key-file"
    case tlsServerName = "tls-server-name"
    case tlsInsecureSkipVerify = "tls-insecure-skip-verify"
    case stream
    case partitions
    case routeFrom = "route-from"
    case group
    case consumer
    case channelField = "channel-field"
    case concurrency
    case batch
    case blockMs = "block-ms"
    case lockTTL = "lock-ttl"
    case claimIdle = "claim-idle"
    case maxDeliveries = "max-deliveries"
    case gapTimeout = "gap-timeout"
    case handler
    case handlerURL = "handler-url"
    case handlerTimeout = "handler-timeout"
    case historyMax = "history-max"
    case workMs = "work-ms"
    case shutdownGrace = "shutdown-grace"
    case keyPrefix = "key-prefix"
    case maxEntryBytes = "max-entry-bytes"
    case logLevel = "log-level"
    case logFormat = "log-format"
    case metricsPort = "metrics-port"
    case metricsHost = "metrics-host"

    var environmentName: String { Self.environmentName(rawValue) }

    static func environmentName(_ key: String) -> String {
        "SG_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }
}

/// Layers flags over environment over file, and turns raw strings into typed values.
package struct ConfigurationLoader {
    enum Raw {
        case scalar(String)
        case list([String])
    }

    struct Setting {
        var raw: Raw
        var source: ConfigurationSource
    }

    static let passwordEnvironment = "SG_REDIS_PASSWORD"
    static let configEnvironment = "SG_CONFIG"

    private var flags: [String: Setting] = [:]
    private var environment: [String: Setting] = [:]
    private var file: [String: Setting] = [:]
    private let rawEnvironment: [String: String]

    init(
        flags rawFlags: [String: String], environment env: [String: String], yaml: String?, fileSource: ConfigurationSource
    ) throws(ConfigurationError) {
        rawEnvironment = env
        // Sorted so that with several bad keys the same one is reported every run.
        for (key, value) in rawFlags.sorted(by: { $0.key < $1.key }) {
            if key == "redis-password" { throw .passwordNotAccepted(source: .flag(key)) }
            // `config` picks the file, which the caller has already read.
            if key == "config" { continue }
            guard ConfigurationOption(rawValue: key) != nil else {
                throw .unknownKey(key, suggestion: Self.suggestion(for: key), source: .flag(key))
            }
            flags[key] = Setting(raw: .scalar(value), source: .flag(key))
        }
        for option in ConfigurationOption.allCases {
            // An empty variable is how shells and compose files unset things, so it means "not set".
            if let value = env[option.environmentName], !value.isEmpty {
                environment[option.rawValue] = Setting(raw: .scalar(value), source: .environment(option.environmentName))
            }
        }
        if let yaml {
            file = try Self.parseYAML(yaml, source: fileSource)
        }
    }

    func setting(_ option: ConfigurationOption) -> Setting? {
        flags[option.rawValue] ?? environment[option.rawValue] ?? file[option.rawValue]
    }

    func isSet(_ option: ConfigurationOption) -> Bool { setting(option) != nil }

    // MARK: Typed accessors

    /// The single scalar value of `option`, trimmed; rejects a YAML list for options that take one value.
    func scalar(_ option: ConfigurationOption) throws(ConfigurationError) -> (String, ConfigurationSource)? {
        guard let setting = setting(option) else { return nil }
        switch setting.raw {
        case .scalar(let value):
            return (value.trimmingCharacters(in: .whitespacesAndNewlines), setting.source)
        case .list(let items):
            throw .invalidValue(
                option: option.rawValue, value: "[\(items.joined(separator: ", "))]",
                expected: "a single value (lists are only for stream)", source: setting.source)
        }
    }

    /// A non-empty string without whitespace, or nil when unset.
    func optionalString(_ option: ConfigurationOption) throws(ConfigurationError) -> String? {
        guard isSet(option) else { return nil }
        return try string(option, default: "", allowWhitespace: false)
    }

    func string(
        _ option: ConfigurationOption, default fallback: String, allowWhitespace: Bool = true
    ) throws(ConfigurationError) -> String {
        guard let (value, source) = try scalar(option) else { return fallback }
        let bad = value.isEmpty || (!allowWhitespace && value.contains(where: \.isWhitespace))
        guard !bad else {
            throw .invalidValue(
                option: option.rawValue, value: value,
                expected: allowWhitespace ? "a non-empty string" : "a non-empty string without whitespace",
                source: source)
        }
        return value
    }

    /// An integer in `range`, or `nil` when the option is not set (an option that is off by default).
    func optionalInteger(_ option: ConfigurationOption, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
        guard let (value, source) = try scalar(option) else { return nil }
        guard let n = Int(value), range.contains(n) else {
            throw .invalidValue(
                option: option.rawValue, value: value,
                expected: "an integer in \(range.lowerBound)...\(range.upperBound)", source: source)
        }
        return n
    }

    func integer(_ option: ConfigurationOption, default fallback: Int, minimum: Int) throws(ConfigurationError) -> Int {
        guard let (value, source) = try scalar(option) else { return fallback }
        guard let n = Int(value), n >= minimum else {
            throw .invalidValue(option: option.rawValue, value: value, expected: "an integer >= \(minimum)", source: source)
        }
        return n
    }

    /// Whole milliseconds, as in `block-ms` and `work-ms`.
    func milliseconds(_ option: ConfigurationOption, default fallback: Duration) throws(ConfigurationError) -> Duration {
        guard let (value, source) = try scalar(option) else { return fallback }
        guard let n = Int64(value), n >= 0 else {
            throw .invalidValue(
                option: option.rawValue, value: value, expected: "a whole number of milliseconds >= 0", source: source)
        }
        return .milliseconds(n)
    }

    /// - Parameter range: the bounds and why they are there, when the option has them; a value
    ///   outside is refused with that reason, even when it is too large to parse.
    func duration(
        _ option: ConfigurationOption, default fallback: Duration, allowZero: Bool,
        range: (bounds: ClosedRange<Duration>, why: String)? = nil
    ) throws(ConfigurationError) -> Duration {
        guard let (value, source) = try scalar(option) else { return fallback }
        let bound = allowZero ? ">= 0" : "> 0"
        let format = "a duration in seconds \(bound) (such as 10, 1.5, 1500ms, 2s or 1m)"
        func outOfRange() -> ConfigurationError {
            let bounds = range!.bounds
            return .invalidValue(
                option: option.rawValue, value: value,
                expected: "within \(Self.describe(bounds.lowerBound)) to \(Self.describe(bounds.upperBound)): \(range!.why)",
                source: source)
        }
        guard let d = Self.parseDuration(value) else {
            // Numbers too large for a Duration, or in exponent form (1e12): say what is wrong with the
            // amount rather than only with its spelling.
            if let range, Self.isNumber(value, above: range.bounds.upperBound) { throw outOfRange() }
            throw .invalidValue(option: option.rawValue, value: value, expected: format, source: source)
        }
        guard allowZero || d > .zero else {
            throw .invalidValue(option: option.rawValue, value: value, expected: format, source: source)
        }
        if let range, !range.bounds.contains(d) { throw outOfRange() }
        return d
    }

    /// Whether `text` is a number (seconds, or ms with that suffix; exponents allowed) beyond `limit`.
    static func isNumber(_ text: String, above limit: Duration) -> Bool {
        var trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        var scale = 1.0
        if trimmed.hasSuffix("ms") { trimmed.removeLast(2); scale = 0.001 }
        else if trimmed.hasSuffix("s") { trimmed.removeLast() }
        guard let number = Double(trimmed), number.isFinite else { return false }
        return number * scale > Double(limit.components.seconds)
    }

    /// `10 ms`, `1 day`, `90 s`: for the bounds in messages.
    static func describe(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 86_400_000 == 0 { return ms == 86_400_000 ? "1 day" : "\(ms / 86_400_000) days" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return "\(ms) ms"
    }

    func choice<T: RawRepresentable & CaseIterable>(
        _ option: ConfigurationOption, default fallback: T
    ) throws(ConfigurationError) -> T where T.RawValue == String {
        guard let (value, source) = try scalar(option) else { return fallback }
        guard let v = T(rawValue: value.lowercased()) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalidValue(option: option.rawValue, value: value, expected: "one of \(names)", source: source)
        }
        return v
    }

    /// A list from a YAML sequence, or a comma-separated string from anywhere.
    func list(_ option: ConfigurationOption, default fallback: [String]) throws(ConfigurationError) -> [String] {
        guard let setting = setting(option) else { return fallback }
        let items: [String]
        let shown: String
        switch setting.raw {
        case .scalar(let value):
            items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            shown = value
        case .list(let values):
            items = values.map { $0.trimmingCharacters(in: .whitespaces) }
            shown = "[\(values.joined(separator: ", "))]"
        }
        let names = items.filter { !$0.isEmpty }
        guard !names.isEmpty, !names.contains(where: { $0.contains(where: \.isWhitespace) }) else {
            throw .invalidValue(
                option: option.rawValue, value: shown,
                expected: "one or more names without whitespace (a YAML list or comma-separated)", source: setting.source)
        }
        return names
    }

    func redisURL(default fallback: String) throws(ConfigurationError) -> String {
        guard let (value, source) = try scalar(.redisURL) else { return fallback }
        if let reason = Self.urlProblem(value) {
            throw .invalidURL(value: Self.redactedURL(value), reason: reason, source: source)
        }
        // A password in the URL is fine from the environment; on a command line `ps` shows it,
        // and a config file is often committed.
        switch source {
        case .flag, .file: if Self.urlCarriesPassword(value) { throw .passwordNotAccepted(source: source) }
        case .environment, .defaults: break
        }
        return value
    }

    /// The webhook URL: absolute http or https with a host. Shown redacted in errors, since it may carry credentials.
    func webhookURL() throws(ConfigurationError) -> String? {
        guard let (value, source) = try scalar(.handlerURL) else { return nil }
        if let reason = Self.webhookURLProblem(value) {
            throw .invalidValue(
                option: ConfigurationOption.handlerURL.rawValue, value: Self.redactedWebhookURL(value),
                expected: "an http:// or https:// URL (\(reason))", source: source)
        }
        return value
    }

    static func webhookURLProblem(_ url: String) -> String? {
        guard !url.contains(where: \.isWhitespace) else { return "it contains whitespace" }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            return "it does not parse"
        }
        guard scheme == "http" || scheme == "https" else { return "scheme \(scheme) is not http or https" }
        guard let host = components.host, !host.isEmpty else { return "it has no host" }
        return nil
    }

    /// `url` with any user info replaced by `***`.
    package static func redactedWebhookURL(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.user != nil || components.password != nil else { return url }
        components.user = "***"
        components.password = nil
        return components.string ?? "***"
    }

    /// The password and the file it came from. Flags beat the environment, which beats the file, as for every option.
    func password() throws(ConfigurationError) -> (password: String?, file: String?) {
        let envPassword = rawEnvironment[Self.passwordEnvironment].flatMap { $0.isEmpty ? nil : $0 }
        guard let setting = setting(.redisPasswordFile) else { return (envPassword, nil) }
        if case .file = setting.source, let envPassword { return (envPassword, nil) }
        if case .environment(let name) = setting.source, envPassword != nil {
            throw .conflict(
                option: ConfigurationOption.redisPasswordFile.rawValue,
                message: "both \(Self.passwordEnvironment) and \(name) are set; set only one", source: setting.source)
        }
        let path = try string(.redisPasswordFile, default: "")
        return (try Self.readPassword(path: path, source: setting.source), path)
    }

    // MARK: Pure parsers

    /// Plain seconds (`10`, `1.5`) or a number with `ms`, `s` or `m`. Parsed in integers so `0.1` is exactly 100 ms.
    static func parseDuration(_ text: String) -> Duration? {
        var s = Substring(text.trimmingCharacters(in: .whitespaces).lowercased())
        var unitNanos: Int64 = 1_000_000_000
        if s.hasSuffix("ms") {
            unitNanos = 1_000_000
            s = s.dropLast(2)
        } else if s.hasSuffix("s") {
            s = s.dropLast()
        } else if s.hasSuffix("m") {
            unitNanos = 60_000_000_000
            s = s.dropLast()
        }
        s = Substring(s.trimmingCharacters(in: .whitespaces))
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let wholeDigits = parts[0]
        let fractionDigits = parts.count > 1 ? parts[1] : ""
        guard !(wholeDigits.isEmpty && fractionDigits.isEmpty),
              (wholeDigits + fractionDigits).allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        guard let whole = Int64(wholeDigits.isEmpty ? "0" : wholeDigits) else { return nil }
        // Nine digits is nanosecond precision even for seconds; anything finer is dropped.
        let nine = String(fractionDigits.prefix(9)).padding(toLength: 9, withPad: "0", startingAt: 0)
        guard let fraction = Int64(nine) else { return nil }
        let (wholeNanos, overflow) = whole.multipliedReportingOverflow(by: unitNanos)
        guard !overflow else { return nil }
        // unitNanos is a multiple of 1 ms, which keeps this product far from overflow.
        let fractionNanos = fraction * (unitNanos / 1_000_000) / 1_000
        let (total, overflow2) = wholeNanos.addingReportingOverflow(fractionNanos)
        guard !overflow2 else { return nil }
        return .nanoseconds(total)
    }

    /// Why `url` cannot be used, or `nil`. Mirrors what the Redis client accepts without depending on it.
    static func urlProblem(_ url: String) -> String? {
        guard !url.contains(where: \.isWhitespace) else { return "contains whitespace" }
        guard let schemeEnd = url.range(of: "://") else {
            return "no scheme; expected redis://host[:port][/db], rediss://…, unix:///path or redis+cluster://host:port[,host:port…]"
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        var rest = Substring(url[schemeEnd.upperBound...])
        if let q = rest.firstIndex(of: "?") { rest = rest[..<q] }
        switch scheme {
        case "redis+cluster", "rediss+cluster":
            if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            if rest.hasSuffix("/0") { rest = rest.dropLast(2) }
            if rest.contains("/") { return "a Redis Cluster has only database 0" }
            for node in rest.split(separator: ",", omittingEmptySubsequences: false) {
                if node.isEmpty { return "an empty node in the list" }
                if let problem = urlProblem("redis://\(node)") { return "node \"\(node)\": \(problem)" }
            }
            return nil
        case "redis", "rediss":
            if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
            var hostPort = rest
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty && Int(db).map({ $0 < 0 }) ?? true {
                    return "database \"\(db)\" is not a non-negative integer"
                }
            }
            var host = hostPort
            var port: Substring?
            if hostPort.hasPrefix("[") {
                guard let close = hostPort.firstIndex(of: "]") else { return "unterminated IPv6 address" }
                host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") { port = after.dropFirst() } else if !after.isEmpty { return "junk after IPv6 address" }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = hostPort[..<colon]
                port = hostPort[hostPort.index(after: colon)...]
            }
            if let port, Int(port).map({ !(1...65535).contains($0) }) ?? true {
                return "port \"\(port)\" is not in 1...65535"
            }
            return host.isEmpty ? "no host" : nil
        case "unix":
            return rest.hasPrefix("/") && rest.count > 1 ? nil : "needs an absolute socket path, as in unix:///run/redis.sock"
        default:
            return "scheme must be redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
        }
    }

    /// `url` with the password in its user info or `password=` query replaced by `***`.
    /// `user:password@` in the authority, or a `password=` query parameter.
    static func urlCarriesPassword(_ url: String) -> Bool {
        guard let schemeEnd = url.range(of: "://") else { return false }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex)]
        if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":"),
           authority.index(after: colon) < at { return true }
        if let query = rest.firstIndex(of: "?") {
            return rest[rest.index(after: query)...].split(separator: "&").contains { $0.hasPrefix("password=") && $0.count > 9 }
        }
        return false
    }

    static func redactedURL(_ url: String) -> String {
        var out = url
        if let schemeEnd = out.range(of: "://") {
            let afterScheme = out[schemeEnd.upperBound...]
            let authorityEnd = afterScheme.firstIndex(of: "?") ?? out.endIndex
            if let at = out[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") {
                let userInfo = out[schemeEnd.upperBound..<at]
                let masked = userInfo.firstIndex(of: ":").map { String(userInfo[..<$0]) + ":***" } ?? "***"
                out.replaceSubrange(schemeEnd.upperBound..<at, with: masked)
            }
        }
        if let range = out.range(of: "password=") {
            let end = out[range.upperBound...].firstIndex(of: "&") ?? out.endIndex
            out.replaceSubrange(range.upperBound..<end, with: "***")
        }
        return out
    }

    /// The valid key within edit distance 2 of `key`, if any.
    static func suggestion(for key: String) -> String? {
        closest(to: key.lowercased(), among: ConfigurationOption.allCases.map(\.rawValue))
    }

    /// The candidate within edit distance 2 of `key`, if any.
    static func closest(to key: String, among candidates: [String]) -> String? {
        let best = candidates
            .map { (name: $0, distance: editDistance(key, $0)) }
            .min { $0.distance < $1.distance }
        guard let best, best.distance <= 2 else { return nil }
        return best.name
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            previous = current
        }
        return previous[b.count]
    }

    static func parseYAML(_ yaml: String, source: ConfigurationSource) throws(ConfigurationError) -> [String: Setting] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch YamlError.duplicatedKeysInMapping(let duplicates, _) {
            // Yams 6 refuses repeated keys itself; the message stays the one the loop below gives.
            throw .invalidYAML(message: duplicates.sorted().map { "key \"\($0)\" appears more than once" }.joined(separator: "; "),
                               source: source)
        } catch {
            throw .invalidYAML(message: "\(error)", source: source)
        }
        guard let root else { return [:] }  // empty or comments only
        if let scalar = root.scalar, isNull(scalar) { return [:] }
        guard let mapping = root.mapping else {
            throw .invalidYAML(message: "the top level must be a mapping of option: value", source: source)
        }
        var settings: [String: Setting] = [:]
        var seen: Set<String> = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw .invalidYAML(message: "keys must be option names, not lists or mappings", source: source)
            }
            // Yams keeps the last of two equal keys; with no warning a typo'd copy would silently win.
            guard seen.insert(key).inserted else {
                throw .invalidYAML(message: "key \"\(key)\" appears more than once", source: source)
            }
            if key == "redis-password" { throw .passwordNotAccepted(source: source) }
            guard ConfigurationOption(rawValue: key) != nil else {
                throw .unknownKey(key, suggestion: suggestion(for: key), source: source)
            }
            switch valueNode {
            case .scalar(let scalar):
                if isNull(scalar) { continue }  // `key:` with nothing means "use the default"
                settings[key] = Setting(raw: .scalar(scalar.string), source: source)
            case .sequence(let sequence):
                var items: [String] = []
                for item in sequence {
                    guard let s = item.scalar?.string else {
                        throw .invalidValue(option: key, value: "[[...]]", expected: "a list of names", source: source)
                    }
                    items.append(s)
                }
                settings[key] = Setting(raw: .list(items), source: source)
            case .mapping:
                throw .invalidValue(option: key, value: "{...}", expected: "a single value (not a mapping)", source: source)
            case .alias:
                // Yams 6 can hand back an alias it did not resolve; a configuration value has no use for one.
                throw .invalidValue(option: key, value: "*alias", expected: "a value written out (not a YAML alias)", source: source)
            }
        }
        return settings
    }

    /// A plain `~`, `null` or nothing; a quoted `""` is a real (empty) string.
    private static func isNull(_ scalar: Node.Scalar) -> Bool {
        scalar.style == .plain && NSNull.construct(from: scalar) != nil
    }

    static func readPassword(path: String, source: ConfigurationSource) throws(ConfigurationError) -> String {
        let option = ConfigurationOption.redisPasswordFile.rawValue
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile(option: option, path: path, source: source)
        }
        guard !isDirectory.boolValue else {
            throw .unreadableFile(option: option, path: path, reason: "it is a directory", source: source)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(option: option, path: path, reason: "permission denied or I/O error", source: source)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(option: option, path: path, reason: "not UTF-8 text", source: source)
        }
        // Secret files usually end in a newline that is not part of the password.
        var password = Substring(text)
        while let last = password.last, last.isNewline { password = password.dropLast() }
        guard !password.isEmpty else {
            throw .unreadableFile(option: option, path: path, reason: "it is empty", source: source)
        }
        return String(password)
    }

    static func readConfigFile(path: String, source: ConfigurationSource) throws(ConfigurationError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .missingFile(option: "config", path: path, source: source)
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableFile(
                option: "config", path: path, reason: isDirectory.boolValue ? "it is a directory" : "permission denied or I/O error",
                source: source)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(option: "config", path: path, reason: "not UTF-8 text", source: source)
        }
        return text
    }
}
