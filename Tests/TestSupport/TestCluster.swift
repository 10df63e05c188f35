import Foundation
import Logging
import RedisClient

/// A private Redis Cluster (3 primaries, 3 replicas) on loopback, started by `Scripts/cluster.sh`,
/// for tests that fail nodes over, kill them or move slots. Stopped by ``stop()`` (or deinit).
public final class PrivateRedisCluster: Sendable {
    public let url: String
    public let directory: String
    /// Every node's port, primaries and replicas alike.
    public let ports: [Int]
    private static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Scripts/cluster.sh").path

    public init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-cluster-\(UUID().uuidString.prefix(8))").path
        let output = directory + ".out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let start = try ChildProcess("/bin/bash", [Self.script, "start", directory], stdout: output)
        let status = await start.wait(timeout: .seconds(120))
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0, let line = printed.split(separator: "\n").last(where: { $0.hasPrefix("redis+cluster://") }) else {
            if status == nil { start.killNow() }
            throw TestSetupError.serverDidNotStart("Scripts/cluster.sh start: \(printed)")
        }
        url = String(line)
        let portList = (try? String(contentsOfFile: directory + "/ports", encoding: .utf8)) ?? ""
        ports = portList.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    }

    /// A cluster client; tests close it.
    public func client(commandTimeout: Duration = .seconds(10)) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: url)
        configuration.commandTimeout = commandTimeout
        return RedisClient(configuration: configuration, logger: Logger(label: "test-cluster"))
    }

    /// A plain client of one node, for node-level commands (CLUSTER …, DEBUG, SHUTDOWN).
    public func node(_ port: Int) throws -> RedisClient {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(port)")
        configuration.poolSize = 1
        configuration.commandTimeout = .seconds(10)
        return RedisClient(configuration: configuration, logger: Logger(label: "test-cluster-node"))
    }

    public struct Node: Sendable {
        public var id: String
        public var port: Int
        public var isPrimary: Bool
        public var failed: Bool
        /// A replica's primary id.
        public var primaryID: String?
        public var slots: [ClosedRange<Int>]
    }

    /// Every reachable node as it describes itself (its `myself` line of `CLUSTER NODES`): another
    /// node's view of it can lag behind, right after creation or a failover. A node that does not
    /// answer is listed as failed.
    public func nodes() async throws -> [Node] {
        var found: [Node] = []
        for port in ports {
            let client = try node(port)
            defer { client.close() }
            guard let text = try? await client.send("CLUSTER", "NODES").string,
                  let line = text.split(separator: "\n").first(where: { $0.contains("myself") }) else {
                found.append(Node(id: "", port: port, isPrimary: false, failed: true, primaryID: nil, slots: []))
                continue
            }
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 8 else { continue }
            let slots = f.dropFirst(8).compactMap { range -> ClosedRange<Int>? in
                if range.hasPrefix("[") { return nil }
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                if bounds.count == 2 { return bounds[0]...bounds[1] }
                return bounds.count == 1 ? bounds[0]...bounds[0] : nil
            }
            found.append(Node(id: f[0], port: port, isPrimary: f[2].contains("master"), failed: f[2].contains("fail"),
                              primaryID: f[3] == "-" ? nil : f[3], slots: slots))
        }
        return found
    }

    /// The live primary that serves `slot`.
    public func primary(forSlot slot: Int) async throws -> Node {
        let nodes = try await self.nodes()
        guard let owner = nodes.first(where: { $0.isPrimary && !$0.failed && $0.slots.contains { $0.contains(slot) } }) else {
            throw TestSetupError.serverDidNotStart("no primary serves slot \(slot)")
        }
        return owner
    }

    /// A live replica of `primary`.
    public func replica(of primary: Node) async throws -> Node {
        guard let replica = try await nodes().first(where: { $0.primaryID == primary.id && !$0.failed }) else {
            throw TestSetupError.serverDidNotStart("primary \(primary.port) has no live replica")
        }
        return replica
    }

    /// SIGKILLs the node on `port` (no shutdown, no last writes).
    public func kill(port: Int) {
        guard let text = try? String(contentsOfFile: "\(directory)/\(port).pid", encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        Foundation.kill(pid, SIGKILL)
    }

    /// Waits until every live node reports `cluster_state:ok` and serves all 16384 slots.
    public func waitUntilHealthy(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let nodes = try? await nodes(), nodes.filter({ $0.isPrimary && !$0.failed }).reduce(0, { $0 + $1.slots.reduce(0) { $0 + $1.count } }) == 16384 {
                var ok = true
                for node in nodes where !node.failed {
                    let client = try self.node(node.port)
                    defer { client.close() }
                    let info = (try? await client.send("CLUSTER", "INFO").string) ?? ""
                    if !info.contains("cluster_state:ok") { ok = false }
                }
                if ok { return }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw WaitTimeout()
    }

    /// Moves `slot` to the primary on `port` key by key (``RedisClient/moveSlot(_:to:batch:pause:)``).
    public func migrate(slot: Int, toPort port: Int, batch: Int = 10, pause: Duration = .milliseconds(20)) async throws {
        let admin = try client()
        defer { admin.close() }
        try await admin.moveSlot(slot, to: ClusterNodeAddress(host: "127.0.0.1", port: port), batch: batch, pause: pause)
    }

    /// Every node's state, its view of the cluster and the end of its log: what a test prints
    /// when the cluster misbehaved, since CI keeps nothing else.
    public func diagnostics() async -> String {
        var out = ""
        for port in ports {
            out += "--- node \(port)\n"
            if let client = try? node(port) {
                let info = (try? await client.send("CLUSTER", "INFO").string) ?? "(no answer)"
                out += info.split(separator: "\n").filter { $0.hasPrefix("cluster_state") || $0.hasPrefix("cluster_current_epoch") }.joined(separator: " ") + "\n"
                out += ((try? await client.send("CLUSTER", "NODES").string) ?? "(no CLUSTER NODES)") + "\n"
                client.close()
            }
            let log = (try? String(contentsOfFile: "\(directory)/\(port)/redis.log", encoding: .utf8)) ?? ""
            out += log.split(separator: "\n").suffix(25).joined(separator: "\n") + "\n"
        }
        return out
    }

    public func stop() {
        let stopper = try? ChildProcess("/bin/bash", [Self.script, "stop", directory])
        // Bounded: stop() runs from deinit and defer, which cannot await.
        let deadline = Date().addingTimeInterval(30)
        while let stopper, Date() < deadline, Foundation.kill(stopper.pid, 0) == 0 {
            var status: Int32 = 0
            if waitpid(stopper.pid, &status, WNOHANG) == stopper.pid { break }
            usleep(50_000)
        }
    }
}
