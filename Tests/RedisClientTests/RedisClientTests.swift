import Foundation
import RedisClient
import TestSupport
import Testing

@Suite struct RedisClientTests {
    @Test func repliesStayInOrderWithAThousandConcurrentCallersOnOneConnection() async throws {
        let client = try TestRedis.client(poolSize: 1)
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<1000 {
                group.addTask {
                    // Each caller writes and reads its own value: a mismatched reply shows up as a wrong value.
                    try await client.send("SET", "\(key):\(i)", "value-\(i)")
                    let value = try await client.send("GET", "\(key):\(i)")
                    #expect(value.string == "value-\(i)")
                    let echoed = try await client.send("ECHO", "\(i)")
                    #expect(echoed.string == "\(i)")
                }
            }
            try await group.waitForAll()
        }
        let keys = (0..<1000).map { "\(key):\($0)" }
        #expect(try await client.send(RedisCommand("DEL", keys)).int == 1000)
    }

    @Test func tenMegabyteAndBinaryValuesRoundTrip() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        var big = [UInt8](repeating: 0, count: 10 * 1024 * 1024)
        for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try await client.send("SET", key, big)
        #expect(try await client.send("GET", key).bytes == big)

        let binaryKey: [UInt8] = Array(key.utf8) + [0, 0xFF, 0x0D, 0x0A]
        let binaryValue: [UInt8] = (0...255).map { UInt8($0) }
        try await client.send("SET", binaryKey, binaryValue)
        #expect(try await client.send("GET", binaryKey).bytes == binaryValue)

        let stream = key + ":stream"
        let id = try await client.send("XADD", stream, "*", binaryKey, binaryValue)
        let range = try await client.send("XRANGE", stream, "-", "+")
        let entry = try #require(range.array?.first?.array)
        #expect(entry[0] == id)
        #expect(entry[1].array?.map { $0.bytes } == [binaryKey, binaryValue])
        try await client.send("DEL", key, binaryKey, stream)
    }

    @Test func pipelineReturnsOneResultPerCommandIncludingErrors() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let results = try await client.pipeline([
            RedisCommand("SET", key, "1"),
            RedisCommand("INCR", key),
            RedisCommand("LPUSH", key, "x"),
            RedisCommand("GET", key),
        ])
        #expect(results.count == 4)
        #expect(try results[0].get().isOK)
        #expect(try results[1].get() == .integer(2))
        guard case .failure(let error) = results[2] else {
            Issue.record("LPUSH on a string should fail")
            return
        }
        #expect(error.serverCode == "WRONGTYPE")
        #expect(try results[3].get().string == "2")
        try await client.send("DEL", key)
    }

    @Test func transactionsInAPipelineAreAtomic() async throws {
        let client = try TestRedis.client(poolSize: 1)
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let results = try await client.pipeline([
            RedisCommand("MULTI"), RedisCommand("INCR", key), RedisCommand("INCR", key), RedisCommand("EXEC"),
        ])
        #expect(try results[3].get() == .array([.integer(1), .integer(2)]))
        try await client.send("DEL", key)
    }

    @Test func aScriptsNameIsTheDigestRedisGivesItsCode() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        for source in ["return 1", "return redis.call('GET', KEYS[1])", String(repeating: "-- padding\n", count: 300) + "return 0"] {
            #expect(try await client.send("SCRIPT", "LOAD", source).string == RedisScript(source).sha1)
        }
    }

    @Test func serverErrorsCarryTheirCode() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        try await client.send("SET", key, "v")
        await #expect {
            try await client.send("LPUSH", key, "x")
        } throws: { ($0 as? RedisError)?.serverCode == "WRONGTYPE" }
        try await client.send("XGROUP", "CREATE", key + ":s", "g", "$", "MKSTREAM")
        await #expect {
            try await client.send("XGROUP", "CREATE", key + ":s", "g", "$", "MKSTREAM")
        } throws: { ($0 as? RedisError)?.serverCode == "BUSYGROUP" }
        try await client.send("DEL", key, key + ":s")
    }

    @Test func clientKillFailsInFlightCallersAndTheNextCallReconnects() async throws {
        let client = try TestRedis.client(poolSize: 1)
        let admin = try TestRedis.client(poolSize: 1)
        defer { client.close(); admin.close() }
        let key = TestRedis.uniqueKey()
        let id = try #require(try await client.send("CLIENT", "ID").int)

        // A blocked BLPOP keeps everything queued behind it in flight until the kill.
        var blpop = RedisCommand("BLPOP", key, 30)
        blpop.blockTime = .seconds(30)
        let blocked = Task { try await client.send(blpop) }
        let followers = (0..<20).map { i in Task { try await client.send("ECHO", "\(i)") } }
        // Wait until the server reports our connection as blocked, so the kill really hits in-flight work.
        try await waitUntil { (try await admin.send("CLIENT", "LIST", "ID", id).string ?? "").contains("cmd=blpop") }
        #expect(try await admin.send("CLIENT", "KILL", "ID", id) == .integer(1))

        await #expect { try await blocked.value } throws: { ($0 as? RedisError)?.isConnectionError == true }
        for follower in followers {
            await #expect { try await follower.value } throws: { ($0 as? RedisError)?.isConnectionError == true }
        }
        #expect(try await client.send("PING") == .status("PONG"))
        #expect(try await client.send("CLIENT", "ID").int != id)
    }

    @Test func blockingReadOnADedicatedConnectionDoesNotDelayOtherCommands() async throws {
        let client = try TestRedis.client(poolSize: 1)
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        try await client.send("XGROUP", "CREATE", stream, "g", "$", "MKSTREAM")
        let reader = Task {
            try await client.withDedicatedConnection { connection in
                var read = RedisCommand("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "BLOCK", 60_000, "STREAMS", stream, ">")
                read.blockTime = .seconds(60)
                return try await connection.send(read)
            }
        }
        try await waitUntil {
            (try await client.send("CLIENT", "LIST").string ?? "").contains("cmd=xreadgroup")
        }
        for i in 0..<200 {
            #expect(try await client.send("ECHO", "\(i)").string == "\(i)")
        }
        // The read is still parked: everything above completed while it blocked.
        try await client.send("XADD", stream, "*", "f", "v")
        let reply = try await reader.value
        #expect(reply.array?.count == 1)
        try await client.send("DEL", stream)
    }

    @Test func cancellingABlockedReadReturnsPromptly() async throws {
        let client = try TestRedis.client(poolSize: 1)
        defer { client.close() }
        let key = TestRedis.uniqueKey()
        let reader = Task {
            try await client.withDedicatedConnection { connection in
                var blpop = RedisCommand("BLPOP", key, 0)
                blpop.blockTime = .zero
                return try await connection.send(blpop)
            }
        }
        try await waitUntil { (try await client.send("CLIENT", "LIST").string ?? "").contains("cmd=blpop") }
        reader.cancel()
        await #expect { try await reader.value } throws: { ($0 as? RedisError).map { "\($0)" } == "\(RedisError.cancelled)" }
        #expect(try await client.send("PING") == .status("PONG"))
    }

    @Test func aPublishedMessageIsReceived() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let channel = TestRedis.uniqueKey()
        let subscription = try await client.subscriber.subscribe(channel)
        defer { subscription.cancel() }
        #expect(try await client.send("PUBLISH", channel, [UInt8]([1, 0, 2])) == .integer(1))
        #expect(await subscription.next(timeout: .seconds(30)) == .message([1, 0, 2]))

        // A second local subscriber on the same channel sees the same messages.
        let second = try await client.subscriber.subscribe(channel)
        #expect(try await client.send("PUBLISH", channel, "again") == .integer(1))
        #expect(await subscription.next(timeout: .seconds(30)) == .message(Array("again".utf8)))
        #expect(await second.next(timeout: .seconds(30)) == .message(Array("again".utf8)))
        second.cancel()
    }

    @Test func waitingForAMessageEndsAtItsTimeout() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let subscription = try await client.subscriber.subscribe(TestRedis.uniqueKey())
        defer { subscription.cancel() }
        #expect(await subscription.next(timeout: .milliseconds(20)) == nil)
    }

    @Test func clientSetsItsNameAndSelectsTheDatabase() async throws {
        var configuration = try RedisConfiguration(url: TestRedis.url())
        configuration.clientName = "sg-test-name"
        configuration.database = 5
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        #expect(try await client.send("CLIENT", "GETNAME").string == "sg-test-name")
        let info = try await client.send("CLIENT", "INFO").string ?? ""
        #expect(info.contains("db=5"))
    }

    @Test func connectingToANonListeningPortFailsFast() async throws {
        var configuration = try RedisConfiguration(url: "redis://127.0.0.1:1")
        configuration.connectTimeout = .seconds(2)
        let client = RedisClient(configuration: configuration)
        defer { client.close() }
        await #expect { try await client.send("PING") } throws: { error in
            guard case .connectFailed = error as? RedisError else { return false }
            return true
        }
    }
}
