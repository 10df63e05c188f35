import RedisClient
import StreamWorker
import Synchronization
import TestSupport

/// A fresh single-stream layout under a unique prefix, its input stream `<prefix>:in` created
/// with group "g".
func freshInput(_ client: RedisClient, prefix name: String) async throws -> (keys: WorkerKeys, stream: String) {
    let keys = WorkerKeys(prefix: TestRedis.uniqueKey(name))
    let stream = keys.prefix + ":in"
    _ = try await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
    return (keys, stream)
}

final class EventLog: Sendable {
    private struct State {
        var inside: [String: Int] = [:]
        var maxInside = 0
        var channelsAtOnce = 0
        var maxChannels = 0
        var orders: [String: [Int64]] = [:]
    }
    private let state = Mutex(State())

    func enter(_ channel: String) {
        state.withLock { s in
            s.inside[channel, default: 0] += 1
            s.maxInside = max(s.maxInside, s.inside[channel]!)
            s.channelsAtOnce += 1
            s.maxChannels = max(s.maxChannels, s.channelsAtOnce)
        }
    }

    func exit(_ channel: String, _ seq: Int64) {
        state.withLock { s in
            s.inside[channel]! -= 1
            s.channelsAtOnce -= 1
            s.orders[channel, default: []].append(seq)
        }
    }

    var maxInsideOneChannel: Int { state.withLock { $0.maxInside } }
    var maxChannelsAtOnce: Int { state.withLock { $0.maxChannels } }
    func order(_ channel: String) -> [Int64] { state.withLock { $0.orders[channel] ?? [] } }
}

/// Opens once; everyone waiting (and anyone arriving later) goes through.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    func wait() async {
        await withCheckedContinuation { c in
            let passNow = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if passNow { c.resume() }
        }
    }
    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiters.forEach { $0.resume() }
    }
}
