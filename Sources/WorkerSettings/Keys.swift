/// The worker's key layout, all under one configurable prefix (default `sg`).
///
/// With one partition the names are the classic ones (`sg:lock:channel:<id>`, input stream as
/// configured). With more, every key of a channel carries its partition's hash tag
/// (`sg:{p3}:lock:channel:<id>`) and so does the partition's stream (`<stream>:{p3}`), so every
/// script of the worker touches one Redis Cluster slot. docs/worker.md lists the whole layout.
public struct WorkerKeys: Sendable, Equatable {
    public let prefix: String
    /// How many partition streams the input is split into; 1 means the single configured stream.
    public let partitions: Int

    public init(prefix: String = "sg", partitions: Int = 1) {
        precondition(partitions >= 1, "partitions must be at least 1")
        self.prefix = prefix
        self.partitions = partitions
    }

    public var isPartitioned: Bool { partitions > 1 }

    /// The partition a channel lives in (see ``ChannelPartition``).
    public func partition(of channel: String) -> Int { ChannelPartition.of(channel, count: partitions) }

    /// `{p3}`: the hash tag shared by every key of partition 3.
    public static func tag(partition: Int) -> String { "{p\(partition)}" }

    public func lock(channel: String) -> String { channelKey("lock", channel) }
    public func fence(channel: String) -> String { channelKey("fence", channel) }
    public func state(channel: String) -> String { channelKey("state", channel) }
    public func history(channel: String) -> String { channelKey("history", channel) }
    public func seq(channel: String) -> String { channelKey("seq", channel) }
    /// Sequence numbers of a channel that were dead-lettered ahead of their turn.
    public func deadSeqs(channel: String) -> String { channelKey("deadseq", channel) }
    /// Sequence numbers of a channel that gap-timeout skipped: one arriving after all is dead-lettered.
    public func skippedSeqs(channel: String) -> String { channelKey("skipseq", channel) }

    /// A SCAN MATCH pattern for every channel's key of one kind (`"history"`, `"state"`, …).
    public func pattern(_ kind: String) -> String {
        isPartitioned ? "\(prefix):{p*}:\(kind):channel:*" : "\(prefix):\(kind):channel:*"
    }

    /// The channel a key of `kind` belongs to; nil when it is not such a key of this layout.
    public func channel(inKey key: String, kind: String) -> String? {
        let tail = ":\(kind):channel:"
        guard key.hasPrefix(prefix + ":"), let range = key.range(of: tail) else { return nil }
        let channel = String(key[range.upperBound...])
        return channelKey(kind, channel) == key ? channel : nil
    }

    /// The stream partition `partition` of the input stream `base` is read from.
    public func stream(_ base: String, partition: Int) -> String {
        isPartitioned ? "\(base):\(Self.tag(partition: partition))" : base
    }

    /// The stream a producer appends a message of `channel` to.
    public func stream(_ base: String, channel: String) -> String { stream(base, partition: partition(of: channel)) }

    /// Every partition stream of `base`, in partition order.
    public func streams(_ base: String) -> [String] { (0..<partitions).map { stream(base, partition: $0) } }

    /// The lease a worker of `group` holds while it reads partition `partition`.
    public func partitionLease(_ partition: Int, group: String) -> String {
        "\(prefix):\(Self.tag(partition: partition)):lock:partition:\(group)"
    }

    /// Live members of `group`: a sorted set of consumer names scored by heartbeat expiry (Redis ms).
    public func members(group: String) -> String { "\(prefix):members:\(group)" }
    /// Who acquired each partition last, `<consumer> <fence>` by partition number, for operators
    /// (`sgctl inspect`); the lease, not this hash, decides who reads.
    public func partitionOwners(group: String) -> String { "\(prefix):partition-owners:\(group)" }
    /// The pub/sub channel on which joins, leaves and expiries of `group`'s members are announced.
    public func membersChanged(group: String) -> String { members(group: group) + ":changed" }

    /// The router's lease and its routed-up-to cursor for the single inbound stream `source`; one
    /// hash tag, so the cursor is written only while the lease is ours, in one script.
    public func routerLock(source: String) -> String { "\(prefix):{router:\(source)}:lock:router" }
    public func routerCursor(source: String) -> String { "\(prefix):{router:\(source)}:router:cursor" }

    /// Dead letters of `stream` (a partition stream has its own, in its slot).
    public static func deadLetters(of stream: String) -> String { stream + ":dead" }

    /// Built by appending into one buffer: a run builds several of these.
    private func channelKey(_ kind: String, _ channel: String) -> String {
        var key = prefix
        key.reserveCapacity(prefix.utf8.count + kind.utf8.count + channel.utf8.count + 24)
        if isPartitioned {
            key += ":"
            key += Self.tag(partition: partition(of: channel))
        }
        key += ":"
        key += kind
        key += ":channel:"
        key += channel
        return key
    }
}
