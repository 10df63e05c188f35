import StreamWorker

/// An environment such as staging: all of its keys under `<base>:<name>` (`sg:staging`), and its
/// streams renamed into the same prefix (`sg:stream:inbound` → `sg:staging:stream:inbound`), so
/// its state never meets production's and one ACL pattern (`~sg:staging:*`) covers all of it.
///
/// The namespace only chooses the worker's key prefix; ``WorkerKeys`` keeps the layout below it
/// (including any partition tag), so the namespace always stays in front.
public struct KeyNamespace: Sendable, Equatable {
    /// The production prefix (`--key-prefix`, default `sg`).
    public let base: String
    /// nil: the base itself, i.e. production.
    public let name: String?

    /// Words the key layout uses right after the prefix; a namespace named like one would make
    /// its keys hard to tell from production's at a glance.
    static let reserved: Set<String> = ["lock", "fence", "state", "history", "seq", "deadseq", "stream", "channel"]

    public init(base: String = "sg", name: String? = nil) throws(NamespaceError) {
        if let name {
            guard !name.isEmpty, name.count <= 64 else { throw NamespaceError("namespace '\(name)' must be 1 to 64 characters") }
            guard name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "-_".unicodeScalars.contains($0)) }) else {
                throw NamespaceError("namespace '\(name)' may only hold letters, digits, '-' and '_' (it becomes part of every key name)")
            }
            guard !Self.reserved.contains(name) else {
                throw NamespaceError("namespace '\(name)' is a word of the key layout; choose another name, e.g. 'staging'")
            }
        }
        self.base = base
        self.name = name
    }

    /// The worker's `--key-prefix` for this environment.
    public var keyPrefix: String { name.map { "\(base):\($0)" } ?? base }

    public var keys: WorkerKeys { WorkerKeys(prefix: keyPrefix) }

    /// The worker's default stream in this environment.
    public var defaultStream: String { keyPrefix + ":stream:inbound" }

    /// `stream` as this environment names it: a production name under the base prefix gets the
    /// namespace inserted after the base; any other name is put under the namespace's prefix.
    public func stream(_ stream: String) -> String {
        guard name != nil else { return stream }
        if stream.hasPrefix(keyPrefix + ":") { return stream }
        if stream.hasPrefix(base + ":") { return keyPrefix + stream.dropFirst(base.count) }
        return keyPrefix + ":" + stream
    }
}

public struct NamespaceError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
