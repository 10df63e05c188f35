import Foundation
import RedisClient
import Synchronization
import TestSupport
import Testing

/// Tests that disturb the whole server run against a private one each.
@Suite struct PrivateServerTests {
    @Test func aWrongPasswordGivesWRONGPASS() async throws {
        let server = try await PrivateRedisServer(arguments: ["--requirepass", "right-password"])
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(password: "wrong-password"))
        defer { client.close() }
        await #expect { try await client.send("PING") } throws: { ($0 as? RedisError)?.serverCode == "WRONGPASS" }

        let good = RedisClient(configuration: try server.configuration(password: "right-password"))
        defer { good.close() }
        #expect(try await good.send("PING") == .status("PONG"))
    }

    @Test func noPasswordGivesNOAUTH() async throws {
        let server = try await PrivateRedisServer(arguments: ["--requirepass", "right-password"])
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        await #expect { try await client.send("GET", "k") } throws: { ($0 as? RedisError)?.serverCode == "NOAUTH" }
    }

    @Test func anACLUserAuthenticatesWithUserAndPassword() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let admin = RedisClient(configuration: try server.configuration())
        defer { admin.close() }
        try await admin.send("ACL", "SETUSER", "worker", "on", ">pw", "~sg:*", "+@all")
        let worker = RedisClient(configuration: try server.configuration(password: "pw", username: "worker"))
        defer { worker.close() }
        #expect(try await worker.send("ACL", "WHOAMI").string == "worker")
        #expect(try await worker.send("SET", "sg:x", "1").isOK)
        await #expect { try await worker.send("SET", "other", "1") } throws: { ($0 as? RedisError)?.serverCode == "NOPERM" }
    }

    @Test func connectionEventsCountReconnectsButNotTheFirstConnect() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let reconnects = Atomic<Int>(0)
        var configuration = try server.configuration()
        configuration.poolSize = 1
        let events = RedisConnectionEvents(reconnected: { reconnects.add(1, ordering: .relaxed) })
        let client = RedisClient(configuration: configuration, events: events)
        let admin = RedisClient(configuration: try server.configuration())
        defer { client.close(); admin.close() }
        try await client.send("CLIENT", "SETNAME", "watched")
        #expect(reconnects.load(ordering: .relaxed) == 0)
        let killed = try await admin.send("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal").int
        #expect(killed == 1)
        // The kill is noticed by the next command at the latest; it may fail, the one after reconnects.
        _ = try? await client.send("PING")
        try await waitUntil {
            _ = try? await client.send("PING")
            return reconnects.load(ordering: .relaxed) == 1
        }
    }

    /// A SUNSUBSCRIBE queued while the subscriber is disconnected goes out after the
    /// re-subscriptions on the next connection. Its answer must be paired with it: taken for the
    /// server's own, it left its place in line to the next caller, so every later subscription
    /// was confirmed by the answer meant for the one before it (and the last hung).
    @Test func anUnsubscribeQueuedAcrossAReconnectKeepsRepliesInStep() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        var configuration = try server.configuration(commandTimeout: .seconds(5))
        // Long pauses between connect attempts: the server is back, and the SUNSUBSCRIBE queued,
        // before the attempt that succeeds.
        configuration.backoff = ReconnectBackoff(base: .seconds(4), cap: .seconds(4))
        let failures = Atomic<Int>(0), reconnects = Atomic<Int>(0)
        let events = RedisConnectionEvents(reconnected: { reconnects.add(1, ordering: .relaxed) },
                                           connectFailed: { failures.add(1, ordering: .relaxed) })
        let client = RedisClient(configuration: configuration, events: events)
        defer { client.close() }
        let leaving = try await client.subscribe(shardChannel: "leaving")
        let staying = try await client.subscribe(shardChannel: "staying")
        defer { staying.cancel() }
        await server.crash()
        try await waitUntil { failures.load(ordering: .relaxed) >= 1 }
        let before = reconnects.load(ordering: .relaxed)
        try await server.restart()
        leaving.cancel()
        let cancelled = ContinuousClock.now
        try await waitUntil(timeout: .seconds(60)) { reconnects.load(ordering: .relaxed) > before }
        let fresh = try await client.subscribe(shardChannel: "fresh")
        defer { fresh.cancel() }
        #expect(try await client.send("SPUBLISH", "fresh", "hello").int == 1)
        // Reconnect notices may come first: a dying server can still accept a connection.
        var event = await fresh.next(timeout: .seconds(10))
        while event == .reconnected { event = await fresh.next(timeout: .seconds(10)) }
        #expect(event == .message(Array("hello".utf8)))
        #expect(try await client.send("SPUBLISH", "leaving", "gone").int == 0, "unsubscribed on the new connection")
        // A reply that never comes would drop the subscriber at its command timeout.
        try await Task.sleep(until: cancelled + .seconds(7))
        #expect(reconnects.load(ordering: .relaxed) - before == 1, "the subscriber reconnected once (the pool connects for the first time)")
    }

    @Test func connectionEventsCountFailedAttempts() async throws {
        let server = try await PrivateRedisServer()
        let configuration = try server.configuration(commandTimeout: .milliseconds(500))
        server.stop()
        let failures = Atomic<Int>(0)
        let client = RedisClient(configuration: configuration, events: RedisConnectionEvents(connectFailed: { failures.add(1, ordering: .relaxed) }))
        defer { client.close() }
        await #expect(throws: RedisError.self) { try await client.send("PING") }
        #expect(failures.load(ordering: .relaxed) >= 1)
    }

    @Test func aCommandAgainstAPausedServerTimesOut() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration(commandTimeout: .milliseconds(300)))
        let admin = RedisClient(configuration: try server.configuration())
        defer { client.close(); admin.close() }
        #expect(try await client.send("PING") == .status("PONG"))
        try await admin.send("CLIENT", "PAUSE", 5000, "ALL")
        await #expect { try await client.send("GET", "k") } throws: { error in
            guard case .timeout = error as? RedisError else { return false }
            return true
        }
        try await admin.send("CLIENT", "UNPAUSE")
        #expect(try await client.send("PING") == .status("PONG"))
    }

    @Test func scriptsRunAsFunctionsThatAreLoadedOnceAndReloadedAfterAFlush() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        let script = RedisScript("local function pair(a, b) return {a, b} end\nreturn pair(KEYS[1], ARGV[1])")
        #expect(try await client.evaluate(script, keys: ["k"], arguments: ["a"]) == .array([.bulk(Array("k".utf8)), .bulk(Array("a".utf8))]))
        // A library named after the code's digest, holding one function of the same name.
        let libraries = try await client.send("FUNCTION", "LIST", "LIBRARYNAME", script.name).array ?? []
        #expect(libraries.count == 1)
        #expect(script.name == "sg_" + script.sha1)
        #expect(try await client.loadFunctions([script]) == 0, "already there")
        try await client.send("FUNCTION", "FLUSH")
        #expect(try await client.evaluate(script, keys: ["k2"], arguments: ["b"]) == .array([.bulk(Array("k2".utf8)), .bulk(Array("b".utf8))]))
        // A changed script is a library of its own: the old one, which older workers call, stays.
        let changed = RedisScript(script.source + "\n-- v2")
        #expect(try await client.loadFunctions([changed]) == 1)
        #expect(try await client.send("FCALL", script.name, 1, "k3", "c").array?.count == 2)
    }

    @Test func functionsSurviveARedisRestart() async throws {
        let server = try await PrivateRedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        let script = RedisScript("return ARGV[1]")
        #expect(try await client.loadFunctions([script]) == 1)
        try await server.crashAndRestart()
        try await waitUntil(timeout: .seconds(30)) { (try? await client.send("PING")) == .status("PONG") }
        #expect(try await client.send("FCALL", script.name, 0, "kept").string == "kept", "persisted in the AOF, unlike the script cache")
    }

    @Test func subscriptionsSurviveAServerSideKill() async throws {
        let server = try await PrivateRedisServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        let subscription = try await client.subscriber.subscribe("chan")
        defer { subscription.cancel() }
        try await client.send("CLIENT", "KILL", "TYPE", "pubsub")
        // The subscriber reconnects by itself, re-subscribes, and says so.
        #expect(await subscription.next(timeout: .seconds(30)) == .reconnected)
        try await waitUntil { try await client.send("PUBSUB", "NUMSUB", "chan").array?.last?.int == 1 }
        try await client.send("PUBLISH", "chan", "after")
        #expect(await subscription.next(timeout: .seconds(30)) == .message(Array("after".utf8)))
    }

    @Test func commandsFailPromptlyOnceTheServerIsGone() async throws {
        let server = try await PrivateRedisServer()
        let client = RedisClient(configuration: try server.configuration())
        defer { client.close() }
        #expect(try await client.send("PING") == .status("PONG"))
        server.stop()
        await #expect(throws: RedisError.self) { try await client.send("PING") }
    }
}
