import Foundation
import Testing
import TestSupport
@testable import RedisClient

/// The cluster client against a real local cluster (3 primaries, 3 replicas, Scripts/cluster.sh).
@Suite(.serialized) struct ClusterClientTests {
    @Test func commandsReachTheNodeOfTheirSlotAndPipelinesKeepTheirOrder() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        let keys = (0..<300).map { "k\($0)" }
        for key in keys { try await client.send("SET", key, key + "-v") }
        let topology = try #require(client.clusterTopology)
        #expect(topology.primaries.count == 3)
        // Every primary holds some of the keys: they were really spread, not all sent to one node.
        for primary in topology.primaries {
            let node = try cluster.node(primary.port)
            defer { node.close() }
            #expect(try await node.send("DBSIZE").int ?? 0 > 0, "\(primary) holds none of the keys")
        }
        let results = try await client.pipeline(keys.map { RedisCommand("GET", $0) })
        #expect(try results.map { try $0.get().string } == keys.map { $0 + "-v" })
        #expect(Set(try await client.scanKeys(matching: "k*")) == Set(keys))
    }

    @Test func aCommandWhoseKeysSpanSlotsIsRefusedBeforeItIsSent() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        await #expect {
            try await client.send("DEL", "foo", "bar")
        } throws: { error in
            guard case .crossSlot(_, let keys) = error as? RedisError else { return false }
            return keys == ["foo", "bar"]
        }
        #expect(try await client.send("DEL", "{t}foo", "{t}bar").int == 0)
    }

    @Test func functionsAreLoadedOnEveryPrimaryAndRunWhereTheirKeysLive() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        let script = RedisScript("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[2]) or 'none'")
        #expect(try await client.loadFunctions([script]) == 1)
        for primary in try #require(client.clusterTopology).primaries {
            let node = try cluster.node(primary.port)
            defer { node.close() }
            let libraries = try await node.send("FUNCTION", "LIST").description
            #expect(libraries.contains(script.name), "\(primary) lacks the library")
        }
        for tag in ["a", "b", "c", "d"] {
            #expect(try await client.evaluate(script, keys: ["{\(tag)}x", "{\(tag)}y"], arguments: ["1"]).string == "none")
        }
        await #expect(throws: RedisError.self) { try await client.evaluate(script, keys: ["a", "b"], arguments: ["1"]) }
    }

    @Test func shardedMessagesReachTheSubscriberOfTheirSlot() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        for channel in ["sg:{p1}:lock:channel:a:released", "sg:{p2}:lock:channel:b:released", "plain"] {
            let subscription = try await client.subscribe(shardChannel: channel)
            defer { subscription.cancel() }
            #expect(try await client.send("SPUBLISH", channel, "hello").int == 1)
            #expect(await subscription.next(timeout: .seconds(10)) == .message(Array("hello".utf8)))
        }
    }

    /// A slot moved key by key: during the move the client meets ASK (keys already moved) and
    /// TRYAGAIN, afterwards MOVED; every command is answered from the key's current home.
    @Test func aSlotMovedWhileInUseIsFollowedThroughAskAndMoved() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        let keys = (0..<200).map { "{moving}k\($0)" }
        for key in keys { try await client.send("SET", key, "0") }
        let slot = HashSlot.of("moving")
        let source = try await cluster.primary(forSlot: slot)
        let target = try #require(try await cluster.nodes().first { $0.isPrimary && $0.id != source.id })
        // Writers keep incrementing every key while the slot moves.
        let writers = Task {
            var rounds = 0
            while !Task.isCancelled {
                for key in keys { _ = try await client.send("INCR", key) }
                rounds += 1
            }
            return rounds
        }
        try await cluster.migrate(slot: slot, toPort: target.port, batch: 5, pause: .milliseconds(10))
        try await Task.sleep(for: .milliseconds(300))
        writers.cancel()
        let rounds = try await writers.value
        #expect(rounds > 0)
        #expect(try await cluster.primary(forSlot: slot).port == target.port)
        // Each key saw every round, or every round but the one cancelled mid-way: no INCR was lost or doubled.
        let values = try await client.pipeline(keys.map { RedisCommand("GET", $0) }).map { Int(try $0.get().string ?? "") ?? -1 }
        for value in values { #expect(value == rounds || value == rounds + 1, "a key holds \(value) after \(rounds) rounds") }
        #expect(client.clusterTopology?.primary(forSlot: slot)?.port == target.port)
        #expect(client.clusterRedirects.ask > 0, "\(client.clusterRedirects)")
        #expect(client.clusterRedirects.moved > 0, "\(client.clusterRedirects)")
    }

    /// When a shard channel's slot leaves the node, Redis drops the subscription with an unasked
    /// `sunsubscribe`: the subscription hears `.reconnected` (re-check), the reply stream stays in
    /// step, and a new subscription reaches the new owner.
    @Test func aShardSubscriptionWhoseSlotMovesIsToldAndCanSubscribeAgain() async throws {
        let cluster = try await PrivateRedisCluster()
        defer { cluster.stop() }
        let client = try cluster.client()
        defer { client.close() }
        let channel = "sg:{moving}:lock:channel:a:released"
        let subscription = try await client.subscribe(shardChannel: channel)
        defer { subscription.cancel() }
        let slot = HashSlot.of(channel)
        let source = try await cluster.primary(forSlot: slot)
        let target = try #require(try await cluster.nodes().first { $0.isPrimary && $0.id != source.id })
        try await cluster.migrate(slot: slot, toPort: target.port)
        #expect(await subscription.next(timeout: .seconds(20)) == .reconnected)
        // The connection that got the unasked sunsubscribe (the source's) still pairs replies with
        // their commands: subscribe there to a channel whose slot the source keeps.
        await client.refreshClusterTopology()
        let kept = try #require((0..<1000).map { "sg:{o\($0)}:x" }.first {
            client.clusterTopology?.primary(forSlot: HashSlot.of($0))?.port == source.port
        })
        let stay = try await client.subscribe(shardChannel: kept)
        defer { stay.cancel() }
        #expect(try await client.send("SPUBLISH", kept, "still").int == 1)
        #expect(await stay.next(timeout: .seconds(10)) == .message(Array("still".utf8)))
        let again = try await client.subscribe(shardChannel: channel)
        defer { again.cancel() }
        #expect(try await client.send("SPUBLISH", channel, "moved").int == 1)
        #expect(await again.next(timeout: .seconds(10)) == .message(Array("moved".utf8)))
    }
}
