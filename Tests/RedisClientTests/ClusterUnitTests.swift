import Testing
@testable import RedisClient

/// The cluster client's pure parts: the slot function, key positions, redirects and the slot map.
@Suite struct HashSlotTests {
    /// The CRC16 check value from the Redis Cluster specification, and slots `CLUSTER KEYSLOT`
    /// gives for the spec's hash-tag examples.
    @Test(arguments: [
        ("123456789", 12739), ("foo", 12182), ("bar", 5061), ("", 0), ("é", 10180),
        ("{user1000}.following", 3443), ("{user1000}.followers", 3443), ("user1000", 3443),
        ("foo{}{bar}", 8363),        // an empty tag: the whole key is hashed
        ("foo{{bar}}zap", 4015),     // the tag is "{bar", up to the first }
        ("foo{bar}{zap}", 5061),     // only the first tag counts
        ("sg:{p3}:lock:channel:a", 3689), ("sg:stream:inbound:{p3}", 3689),
    ])
    func slotsMatchTheSpecification(key: String, slot: Int) {
        #expect(HashSlot.of(key) == slot)
    }

    @Test func theCRCCheckValue() {
        #expect(HashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
    }
}

@Suite struct CommandKeysTests {
    @Test func functionCallsRouteByTheirDeclaredKeys() throws {
        let call = RedisCommand("FCALL", "sg_commit", 2, "sg:{p3}:lock:channel:a", "sg:stream:inbound:{p3}", "token")
        #expect(CommandKeys.keyPositions(of: call) == [3, 4])
        #expect(try CommandKeys.slot(of: call) == 3689)
        #expect(try CommandKeys.slot(of: RedisCommand("FCALL", "f", 0, "arg")) == nil)
    }

    @Test func streamReadsRouteByTheirStreamsNotTheirIds() throws {
        let read = RedisCommand("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "BLOCK", 100, "STREAMS", "s:{p3}", ">")
        #expect(CommandKeys.keyPositions(of: read) == [9])
        #expect(try CommandKeys.slot(of: read) == 3689)
    }

    @Test func subcommandsAndSingleKeyCommands() throws {
        #expect(CommandKeys.keyPositions(of: RedisCommand("XINFO", "GROUPS", "s")) == [2])
        #expect(CommandKeys.keyPositions(of: RedisCommand("HGET", "h", "f")) == [1])
        #expect(CommandKeys.keyPositions(of: RedisCommand("SPUBLISH", "chan", "m")) == [1])
        #expect(CommandKeys.keyPositions(of: RedisCommand("MSET", "a", "1", "b", "2")) == [1, 3])
        #expect(CommandKeys.keyPositions(of: RedisCommand("PING")) == [])
        #expect(CommandKeys.keyPositions(of: RedisCommand("CLUSTER", "SHARDS")) == [])
    }

    @Test func keysInDifferentSlotsAreRefusedNamingThem() {
        #expect {
            try CommandKeys.slot(of: RedisCommand("DEL", "foo", "bar"))
        } throws: { error in
            guard case .crossSlot(let command, let keys) = error as? RedisError else { return false }
            return command == "DEL" && keys == ["foo", "bar"] && "\(error)".contains("foo, bar")
        }
        #expect(throws: Never.self) { try CommandKeys.slot(of: RedisCommand("DEL", "{u}a", "{u}b")) }
    }
}

@Suite struct ClusterRedirectTests {
    @Test func movedAndAskNameTheSlotAndTheNode() {
        #expect(ClusterRedirect(RedisServerError(line: "MOVED 3999 127.0.0.1:6381"))
                == .moved(slot: 3999, node: ClusterNodeAddress(host: "127.0.0.1", port: 6381)))
        #expect(ClusterRedirect(RedisServerError(line: "ASK 3999 10.0.0.2:7000"))
                == .ask(slot: 3999, node: ClusterNodeAddress(host: "10.0.0.2", port: 7000)))
        #expect(ClusterRedirect(RedisServerError(line: "MOVED 12 [::1]:7001"))
                == .moved(slot: 12, node: ClusterNodeAddress(host: "::1", port: 7001)))
        // An unknown endpoint: the same host as the node that answered (the router fills it in).
        #expect(ClusterRedirect(RedisServerError(line: "MOVED 12 :7001"))
                == .moved(slot: 12, node: ClusterNodeAddress(host: "", port: 7001)))
    }

    @Test func retryableStatesAndOtherErrors() {
        #expect(ClusterRedirect(RedisServerError(line: "TRYAGAIN Multiple keys request during rehashing of slot")) == .tryAgain)
        #expect(ClusterRedirect(RedisServerError(line: "CLUSTERDOWN The cluster is down")) == .clusterDown)
        #expect(ClusterRedirect(RedisServerError(line: "ERR unknown command")) == nil)
        #expect(ClusterRedirect(RedisServerError(line: "MOVED nonsense")) == nil)
        #expect(ClusterRedirect(RedisServerError(line: "MOVED 99999 127.0.0.1:1")) == nil)
    }
}

@Suite struct ClusterTopologyTests {
    private static func node(_ port: Int, role: String, health: String = "online") -> RESPValue {
        .array([
            .bulk(Array("id".utf8)), .bulk(Array("n\(port)".utf8)),
            .bulk(Array("port".utf8)), .integer(Int64(port)),
            .bulk(Array("tls-port".utf8)), .integer(Int64(port + 1000)),
            .bulk(Array("ip".utf8)), .bulk(Array("127.0.0.1".utf8)),
            .bulk(Array("endpoint".utf8)), .bulk(Array("127.0.0.1".utf8)),
            .bulk(Array("role".utf8)), .bulk(Array(role.utf8)),
            .bulk(Array("health".utf8)), .bulk(Array(health.utf8)),
        ])
    }

    private static func shard(_ ranges: [Int64], _ nodes: [RESPValue]) -> RESPValue {
        .array([.bulk(Array("slots".utf8)), .array(ranges.map { .integer($0) }), .bulk(Array("nodes".utf8)), .array(nodes)])
    }

    @Test func clusterShardsGivesEachSlotItsPrimary() throws {
        let reply = RESPValue.array([
            Self.shard([0, 5460], [Self.node(7000, role: "master"), Self.node(7003, role: "replica")]),
            Self.shard([5461, 10922], [Self.node(7004, role: "replica"), Self.node(7001, role: "master")]),
            Self.shard([10923, 12000, 12001, 16383], [Self.node(7002, role: "master")]),
        ])
        let topology = try ClusterTopology.parse(shards: reply)
        #expect(topology.primary(forSlot: 0) == ClusterNodeAddress(host: "127.0.0.1", port: 7000))
        #expect(topology.primary(forSlot: 5461) == ClusterNodeAddress(host: "127.0.0.1", port: 7001))
        #expect(topology.primary(forSlot: 16383) == ClusterNodeAddress(host: "127.0.0.1", port: 7002))
        #expect(topology.uncoveredSlots == 0)
        #expect(topology.shards[1].replicas == [ClusterNodeAddress(host: "127.0.0.1", port: 7004)])
        #expect(try ClusterTopology.parse(shards: reply, tls: true).primary(forSlot: 0)?.port == 8000)
    }

    @Test func aFailedPrimaryServesNothingUntilItsReplicaIsPromoted() throws {
        let reply = RESPValue.array([
            Self.shard([0, 8191], [Self.node(7000, role: "master", health: "fail"), Self.node(7003, role: "replica")]),
            Self.shard([8192, 16383], [Self.node(7001, role: "master")]),
        ])
        let topology = try ClusterTopology.parse(shards: reply)
        #expect(topology.primary(forSlot: 0) == nil)
        #expect(topology.uncoveredSlots == 8192)
        #expect(topology.primaries == [ClusterNodeAddress(host: "127.0.0.1", port: 7001)])
    }

    @Test func clusterSlotsIsTheFallback() throws {
        func address(_ port: Int64) -> RESPValue { .array([.bulk(Array("127.0.0.1".utf8)), .integer(port), .bulk(Array("id".utf8))]) }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(100), address(7000), address(7003)]),
            .array([.integer(101), .integer(16383), address(7001)]),
            .array([.integer(50), .integer(60), address(7000)]),
        ])
        let topology = try ClusterTopology.parse(slots: reply)
        #expect(topology.primary(forSlot: 100)?.port == 7000)
        #expect(topology.primary(forSlot: 16383)?.port == 7001)
        #expect(topology.shards.count == 2)
        #expect(topology.shards[0].slots == [0...100, 50...60])
    }

    @Test func malformedRepliesAreErrorsNotCrashes() {
        #expect(throws: RedisError.self) { try ClusterTopology.parse(shards: .integer(1)) }
        #expect(throws: RedisError.self) { try ClusterTopology.parse(shards: .array([.array([.bulk(Array("slots".utf8))])])) }
        #expect(throws: RedisError.self) { try ClusterTopology.parse(slots: .array([.array([.integer(5), .integer(1)])])) }
    }
}

@Suite struct ClusterURLTests {
    @Test func aClusterURLListsItsSeeds() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
        #expect(configuration.isCluster)
        #expect(configuration.clusterSeeds == [
            ClusterNodeAddress(host: "10.0.0.1", port: 7000), ClusterNodeAddress(host: "10.0.0.2", port: 6379),
            ClusterNodeAddress(host: "::1", port: 7002),
        ])
        #expect(configuration.username == "app")
        #expect(configuration.password == "s@cret")
        #expect(configuration.tls == nil)
        #expect(!"\(configuration)".contains("s@cret"))
        #expect(try RedisConfiguration(url: "rediss+cluster://h:1").tls != nil)
    }

    @Test func badClusterURLsSayWhy() {
        for url in ["redis+cluster://h:1/3", "redis+cluster://h:1,,h:2", "redis+cluster://h:99999", "unix+cluster:///x"] {
            #expect(throws: RedisError.self, "\(url)") { try RedisConfiguration(url: url) }
        }
    }
}
