import ArgumentParser
import DistributedLocking
import Foundation
import Logging
import RedisClient

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Inspect and exercise channel locks.",
        // A test harness (the pause scenario's stale holder), not an operator command: hidden from help.
        shouldDisplay: false,
        subcommands: [LockHold.self]
    )
}

/// Holds a lock, then writes once told to: the stale-holder half of the pause scenario
/// (freeze it with SIGSTOP past its TTL, let another holder write, resume it, and see
/// whether its late write gets through).
struct LockHold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Acquire a lock, wait for a go file, then attempt a fenced write and report the outcome as JSON.",
        shouldDisplay: false
    )

    @OptionGroup var redis: RedisOptions

    @Option(help: "Lock key.")
    var key: String

    @Option(help: "Lease TTL in seconds (fractions allowed).")
    var ttl: Double = 1

    @Option(help: "State hash the write goes to.")
    var stateKey: String

    @Option(help: "Value written to the state's `owner` field.")
    var value: String

    @Option(help: "File this command creates, holding the fence, once the lock is held.")
    var readyFile: String

    @Option(help: "File whose appearance triggers the write.")
    var goFile: String

    func run() async throws {
        let client = try await redis.client()
        defer { client.close() }
        let lock = DistributedLock(client: client, key: key, ttl: .milliseconds(Int64(ttl * 1000)), autoRenew: true, maxRenewals: 0)
        guard await lock.acquireBlocking(timeout: .seconds(30)) else {
            throw ValidationError("could not acquire \(key) within 30 s")
        }
        let fence = await lock.fence ?? 0
        try "\(fence)\n".write(toFile: readyFile, atomically: true, encoding: .utf8)
        while !FileManager.default.fileExists(atPath: goFile) {
            try await Task.sleep(for: .milliseconds(2))
        }
        let target = FencedTarget(stateKey: stateKey)
        let update = StateUpdate(setFields: ["owner": value])

        // Straight to the store with the old fence, as a holder whose local view is wrong would.
        let store = RedisFencedStore(client: client)
        let storeOutcome: String
        switch try await store.apply(update, to: target, fence: fence) {
        case .applied: storeOutcome = "applied"
        case .staleFence: storeOutcome = "stale"
        }
        // Through the writer, whose local deadline check should refuse before reaching the store.
        let writerOutcome: String
        do {
            try await FencedWriter(store: store, lock: lock).write(update, to: target)
            writerOutcome = "applied"
        } catch LockError.notHeld {
            writerOutcome = "refused_locally"
        } catch LockError.staleFence {
            writerOutcome = "stale"
        }
        await lock.release()
        printJSONLine(["fence": fence, "store": storeOutcome, "writer": writerOutcome, "lost": (await lock.lastLoss)?.rawValue ?? "none"])
    }
}
