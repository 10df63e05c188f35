import DistributedLocking
import Foundation
import Logging
import RedisClient
import StreamWorker
import TestSupport
import Testing

/// Config/users.acl, rendered by Scripts/render-acl.sh and loaded by a private redis-server:
/// a real worker process does all of its work as `sg-worker`, and nothing more is allowed.
@Suite struct LeastPrivilegeTests {
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A server running the shipped ACL with fresh passwords.
    struct Server {
        let redis: PrivateRedisServer
        let adminPassword = "admin-" + UUID().uuidString
        let workerPassword = "worker-" + UUID().uuidString
        let stagingPassword = "staging-" + UUID().uuidString

        /// - Parameters:
        ///   - staging: whether the staging user gets a password (without one it is rendered off).
        ///   - arguments: more redis-server arguments.
        init(staging: Bool = true, arguments: [String] = []) async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-acl-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let rendered = directory.appendingPathComponent("users.acl").path
            let render = try ChildProcess(
                repository.appendingPathComponent("Scripts/render-acl.sh").path,
                [repository.appendingPathComponent("Config/users.acl").path, rendered],
                stdout: directory.appendingPathComponent("render.log").path,
                environment: ["SG_ADMIN_PASSWORD": adminPassword, "SG_WORKER_PASSWORD": workerPassword,
                              "SG_STAGING_PASSWORD": staging ? stagingPassword : ""])
            try #require(await render.wait(timeout: .seconds(30)) == 0, "render-acl.sh failed")
            let text = try String(contentsOfFile: rendered, encoding: .utf8)
            #expect(!text.contains(workerPassword) && !text.contains(adminPassword), "the rendered file holds hashes only")
            redis = try await PrivateRedisServer(arguments: ["--aclfile", rendered] + arguments)
        }

        func client(user: String?, password: String?) throws -> RedisClient {
            RedisClient(configuration: try redis.configuration(password: password, username: user), logger: Logger(label: "acl-test"))
        }

        var admin: RedisClient { get throws { try client(user: "sg-admin", password: adminPassword) } }
        var worker: RedisClient { get throws { try client(user: "sg-worker", password: workerPassword) } }
    }

    static func serverCode(_ body: () async throws -> RESPValue) async -> String? {
        do {
            let reply = try await body()
            Issue.record("expected a refusal, got \(reply)")
            return nil
        } catch let error as RedisError {
            return error.serverCode
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    /// The deploy step, as the compose file and the Kubernetes Job run it: `sgctl functions load` as the admin.
    static func loadFunctions(_ server: Server) async throws {
        let log = server.redis.directory.appendingPathComponent("functions.log").path
        let load = try ChildProcess(builtProductPath("sgctl"), ["functions", "load", "--redis-url", "\(server.redis.url)?user=sg-admin"],
                                    stdout: log, environment: ["SG_REDIS_PASSWORD": server.adminPassword])
        let status = await load.wait(timeout: .seconds(60))
        #expect(status == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// With one partition the classic layout; with four also the membership heartbeats and the
    /// partition leases.
    @Test(arguments: [1, 4]) func aWorkerProcessRunsEveryPathAsTheLeastPrivilegedUser(partitions: Int) async throws {
        let server = try await Server()
        defer { server.redis.stop() }
        let admin = try server.admin
        defer { admin.close() }
        try await Self.loadFunctions(server)
        let keys = WorkerKeys(partitions: partitions)
        let base = "sg:stream:inbound", stream = keys.stream(base, partition: 0)
        let channels = 4, perChannel = 25
        let producer = Producer(client: admin, keys: keys)
        for i in 0..<perChannel {
            for c in 0..<channels { _ = try await producer.send(stream: base, channel: "ch\(c)", fields: [StreamField("n", "\(i)")]) }
        }
        // One entry without a channel, so dead-lettering runs under the ACL too.
        _ = try await admin.send("XADD", stream, "*", "text", "no channel")
        // A crashed consumer's pending entry, for the worker to reclaim once it is idle long enough.
        for partitionStream in keys.streams(base) {
            _ = try await admin.send("XGROUP", "CREATE", partitionStream, "workers", "0", "MKSTREAM")
        }
        _ = try await admin.send("XREADGROUP", "GROUP", "workers", "ghost", "COUNT", 1, "STREAMS", stream, ">")

        let log = server.redis.directory.appendingPathComponent("worker.log").path
        // Turns of 50 ms keep entries in flight across the idle refresh (every claim-idle / 4 = 0.5 s).
        let worker = try ChildProcess(builtProductPath("stream-consumer"), [
            "--redis-url", "\(server.redis.url)?user=sg-worker", "--consumer", "acl-worker", "--partitions", String(partitions),
            "--lock-ttl", "1", "--block-ms", "100", "--log-level", "debug", "--work-ms", "50", "--concurrency", "2",
        ], stdout: log, environment: ["SG_REDIS_PASSWORD": server.workerPassword])
        defer { worker.killNow() }

        try await waitUntil(timeout: .seconds(120)) {
            let counts = try await admin.pipeline((0..<channels).map { RedisCommand("HGET", keys.state(channel: "ch\($0)"), "count") })
            let applied = counts.reduce(0) { $0 + ((try? $1.get().int) ?? 0) }
            var pending: Int64 = 0
            for partitionStream in keys.streams(base) {
                pending += (try? await admin.send("XPENDING", partitionStream, "workers"))?.array?.first?.int ?? 1
            }
            let dead = try await admin.send("XLEN", WorkerKeys.deadLetters(of: stream)).int ?? 0
            return applied == Int64(channels * perChannel) && pending == 0 && dead == 1
        }
        worker.signal(SIGTERM)
        #expect(await worker.wait(timeout: .seconds(60)) == 0)

        for c in 0..<channels {
            #expect(try await admin.send("HGET", keys.state(channel: "ch\(c)"), "last_seq").string == "\(perChannel)")
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        // Partitioned, the ghost's entry is taken over when its partition is acquired, without waiting for claim-idle.
        let path = partitions == 1 ? "Reclaimed idle entries" : "Took over a partition's pending entries"
        #expect(output.contains(path), "the ghost's entry went through the reclaim path")
        // The refresh ran as sg-worker: XCLAIM … JUSTID counts as a command in its ACL category stats.
        let stats = try await admin.send("INFO", "commandstats").string ?? ""
        #expect(stats.contains("cmdstat_xclaim:"), "the idle refresh ran")
        #expect(stats.contains("cmdstat_fcall:") && !stats.contains("cmdstat_evalsha:") && !stats.contains("cmdstat_eval:"))
        // Nothing the worker did was refused: the grant covers every command and key it uses.
        let denied = try await admin.send("ACL", "LOG").array ?? []
        #expect(denied.isEmpty, "the worker was refused: \(denied)")
        #expect(!output.contains("NOPERM"))
        #expect(!output.contains(server.workerPassword), "the password never reaches the log")
    }

    @Test func withoutTheDeployStepTheWorkerSaysWhatToRun() async throws {
        let server = try await Server()
        defer { server.redis.stop() }
        let worker = try server.worker
        defer { worker.close() }
        do {
            _ = try await worker.evaluate(WorkerScripts.produce, keys: ["sg:seq:channel:x", "sg:stream:inbound"], arguments: ["channel_id", "x"])
            Issue.record("a missing function was loaded by the worker user")
        } catch let error as RedisError {
            #expect(error.serverCode == "NOPERM")
            #expect("\(error)".contains("sgctl functions load"))
        }
    }

    @Test func theWorkerUserIsRefusedEverythingOutsideItsGrant() async throws {
        let server = try await Server()
        defer { server.redis.stop() }
        let worker = try server.worker
        defer { worker.close() }
        let admin = try server.admin
        defer { admin.close() }
        try await Self.loadFunctions(server)

        #expect(try await worker.send("SET", "sg:state:channel:x", "1").string == "OK", "inside the grant")
        #expect(await Self.serverCode { try await worker.send("FLUSHALL") } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("CONFIG", "GET", "requirepass") } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("KEYS", "*") } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("XGROUP", "DESTROY", "sg:stream:inbound", "workers") } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("GET", "app:secret") } == "NOPERM", "a key outside sg:*")
        #expect(await Self.serverCode { try await worker.send("PUBLISH", "app:events", "x") } == "NOPERM", "a channel outside sg:*")
        // No code of its own: no EVAL, no SCRIPT LOAD (a busy loop there blocked everyone), no FUNCTION LOAD.
        #expect(await Self.serverCode { try await worker.send("EVAL", "return 1", 0) } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("EVAL", "while true do end", 0) } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("SCRIPT", "LOAD", "while true do end") } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("EVALSHA", RedisScript("return 1").sha1, 0) } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("FUNCTION", "LOAD", RedisScript("while true do end").library) } == "NOPERM")
        #expect(await Self.serverCode { try await worker.send("FUNCTION", "FLUSH") } == "NOPERM")
        // DEL only on lock keys: not the dead letters, the state, the history or the fence counters.
        for key in ["sg:stream:inbound:dead", "sg:stream:inbound", "sg:state:channel:x", "sg:history:channel:x", "sg:fence:channel:x"] {
            #expect(await Self.serverCode { try await worker.send("DEL", key) } == "NOPERM", "DEL \(key)")
        }
        #expect(await Self.serverCode { try await worker.send("UNLINK", "sg:state:channel:x") } == "NOPERM")
        _ = try await worker.send("SET", "sg:lock:channel:x", "token")
        #expect(try await worker.send("DEL", "sg:lock:channel:x").int == 1, "its own lock keys it may delete")
        // The same with partitioned keys: the lock, yes; the partition's state, no.
        let partitioned = WorkerKeys(partitions: 16)
        _ = try await worker.send("SET", partitioned.lock(channel: "x"), "token")
        #expect(try await worker.send("DEL", partitioned.lock(channel: "x")).int == 1, "a partitioned lock key it may delete")
        #expect(await Self.serverCode { try await worker.send("DEL", partitioned.state(channel: "x")) } == "NOPERM")
        // Functions run with the caller's rights, so the admin's libraries give it no more.
        let sneaky = RedisScript("return redis.call('DEL', KEYS[1])")
        _ = try await admin.loadFunctions([sneaky])
        _ = try await admin.send("XADD", "sg:stream:inbound:dead", "*", "reason", "kept")
        // Refused inside the function (Redis reports that as ERR … can't access …), so nothing is deleted.
        #expect(await Self.serverCode { try await worker.send("FCALL", sneaky.name, 1, "sg:stream:inbound:dead") } == "ERR")
        #expect(await Self.serverCode { try await worker.send("FCALL", sneaky.name, 1, "app:secret") } == "NOPERM")
        #expect(try await admin.send("EXISTS", "sg:state:channel:x", "sg:stream:inbound:dead").int == 2)
        // The default user is off: a client without credentials can do nothing.
        let anonymous = try server.client(user: nil, password: nil)
        defer { anonymous.close() }
        #expect(await Self.serverCode { try await anonymous.send("GET", "sg:state:channel:x") } == "NOAUTH")
        let refused = try await admin.send("ACL", "LOG", 200).array ?? []
        // Denials of one command or key are merged into one entry; at least the distinct ones above.
        #expect(refused.count >= 7)
    }

    @Test func theStagingUserReachesOnlyStagingKeys() async throws {
        let server = try await Server()
        defer { server.redis.stop() }
        let staging = try server.client(user: "sg-staging", password: server.stagingPassword)
        defer { staging.close() }
        let keys = WorkerKeys(prefix: "sg:staging")
        try await staging.send("SET", keys.seq(channel: "a"), 1)
        _ = try await staging.send("XADD", "sg:staging:stream:inbound", "*", "channel_id", "a")
        _ = try await staging.send("XRANGE", "sg:staging:stream:inbound", "-", "+")
        for key in [WorkerKeys().seq(channel: "a"), WorkerKeys().state(channel: "a"), "sg:stream:inbound"] {
            #expect(await Self.serverCode { try await staging.send("TYPE", key) } == "NOPERM", "\(key)")
        }
        #expect(await Self.serverCode { try await staging.send("XADD", "sg:stream:inbound", "*", "channel_id", "a") } == "NOPERM")
        #expect(await Self.serverCode { try await staging.send("PUBLISH", "sg:lock:channel:a:released", "x") } == "NOPERM")
    }

    @Test func withoutAStagingPasswordTheStagingUserCannotLogIn() async throws {
        let server = try await Server(staging: false)
        defer { server.redis.stop() }
        let admin = try server.admin
        defer { admin.close() }
        let flags = try await admin.send("ACL", "GETUSER", "sg-staging").array?.dropFirst().first?.array?.compactMap(\.string) ?? []
        #expect(flags.contains("off"), "\(flags)")
        let staging = try server.client(user: "sg-staging", password: "")
        defer { staging.close() }
        await #expect(throws: (any Error).self) { _ = try await staging.send("GET", "sg:staging:x") }
    }

    /// Redis replays a script's writes from the AOF as MULTI/EXEC run by the default user, and
    /// (up to 7.4 at least) re-checks that user's ACL at EXEC even while loading. With the default
    /// user stripped of every right, a restart silently dropped every commit and produced entry;
    /// the compose pool's Redis restart found it. The default user stays off, so nobody logs in as it.
    @Test func aScriptsWritesSurviveARestartFromTheAppendOnlyFile() async throws {
        let server = try await Server(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        defer { server.redis.stop() }
        let worker = try server.worker
        defer { worker.close() }
        let admin = try server.admin
        defer { admin.close() }
        // The worker runs code only as functions the admin loaded (it may not load any itself).
        let library = "#!lua name=sg_aof_test\nredis.register_function('sg_aof_test', function(KEYS, ARGV) "
            + "redis.call('SET', KEYS[1], ARGV[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return 1 end)"
        _ = try await admin.send("FUNCTION", "LOAD", library)
        #expect(try await worker.send("FCALL", "sg_aof_test", 2, "sg:aof:value", "sg:aof:list", "kept").int == 1)

        try await server.redis.crashAndRestart()
        let after = try server.admin
        defer { after.close() }
        #expect(try await after.send("GET", "sg:aof:value").string == "kept")
        #expect(try await after.send("LLEN", "sg:aof:list").int == 1)
        let anonymous = try server.client(user: nil, password: nil)
        defer { anonymous.close() }
        #expect(await Self.serverCode { try await anonymous.send("GET", "sg:aof:value") } == "NOAUTH")
    }

    @Test func theUnrenderedTemplateDoesNotLoad() async throws {
        let template = Self.repository.appendingPathComponent("Config/users.acl").path
        await #expect(throws: TestSetupError.self, "a placeholder is not a hash, so Redis refuses to start") {
            let server = try await PrivateRedisServer(arguments: ["--aclfile", template])
            server.stop()
        }
    }

    @Test func renderingWithoutEveryPasswordFailsAndWritesNothing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sg-acl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("users.acl").path
        let log = directory.appendingPathComponent("render.log").path
        let render = try ChildProcess(
            Self.repository.appendingPathComponent("Scripts/render-acl.sh").path,
            [Self.repository.appendingPathComponent("Config/users.acl").path, output],
            stdout: log, environment: ["SG_WORKER_PASSWORD": "only-this-one", "SG_ADMIN_PASSWORD": "", "SG_ADMIN_PASSWORD_FILE": ""])
        #expect(await render.wait(timeout: .seconds(30)) == 1)
        #expect(!FileManager.default.fileExists(atPath: output))
        let message = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(message.contains("SG_ADMIN_PASSWORD"))
        #expect(!message.contains("only-this-one"))
    }

    @Test func craftedChannelIdsAreDeadLetteredOrStayInsideTheirOwnKeys() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let (keys, stream) = try await freshInput(client, prefix: "crafted")
        let rejected: [([UInt8], String)] = [
            (Array("a\r\nFLUSHALL\r\n".utf8), "channel_control_characters"),
            (Array("x\u{0}y".utf8), "channel_control_characters"),
            (Array("tab\there".utf8), "channel_control_characters"),
            ([0x61, 0xff, 0xfe], "channel_not_utf8"),
            ([], "empty_channel"),
            (Array(repeating: 0x61, count: InboundMessage.maxChannelBytes + 1), "channel_too_long"),
        ]
        for (id, _) in rejected { _ = try await client.send("XADD", stream, "*", "channel_id", id, "text", "x") }
        // Odd but harmless ids: processed, and confined to keys that end in exactly the id.
        let accepted = ["../../etc", "a:b", "*", "{tag}", "sg:state:channel:victim", "\u{1F600} spaced id"]
        for id in accepted { _ = try await client.send("XADD", stream, "*", "channel_id", id, "text", "x") }

        var configuration = WorkerConfiguration.defaults

        configuration.partitions = 1
        configuration.streams = [stream]
        configuration.group = "g"
        configuration.consumer = "solo"
        configuration.keyPrefix = keys.prefix
        configuration.blockTime = .milliseconds(100)
        let worker = StreamWorker(configuration: configuration, client: client, handler: HistoryHandler(), logger: Logger(label: "test"))
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        let dead = WorkerKeys.deadLetters(of: stream)
        try await waitUntil(timeout: .seconds(60)) {
            let applied = try await client.pipeline(accepted.map { RedisCommand("HGET", keys.state(channel: $0), "count") })
            let deadCount = try await client.send("XLEN", dead).int ?? 0
            return applied.allSatisfy { (try? $0.get().int) == 1 } && deadCount == Int64(rejected.count)
        }
        running.cancel()
        _ = await running.result

        let reasons = try await client.send("XRANGE", dead, "-", "+").array?.compactMap { entry -> String? in
            let flat = entry.array?.last?.array?.compactMap(\.string) ?? []
            return flat.firstIndex(of: "reason").map { flat[$0 + 1] }
        }
        #expect(reasons == rejected.map(\.1))
        var allowed: Set<String> = [stream, dead]
        for id in accepted {
            allowed.insert(keys.state(channel: id))
            allowed.insert(keys.history(channel: id))
            allowed.insert(keys.fence(channel: id))
        }
        var found: Set<String> = []
        var cursor = "0"
        repeat {
            let reply = try await client.send("SCAN", cursor, "MATCH", keys.prefix + ":*", "COUNT", 1000).array ?? []
            cursor = reply.first?.string ?? "0"
            for key in reply.last?.array ?? [] { if let key = key.string { found.insert(key) } }
        } while cursor != "0"
        #expect(found.subtracting(allowed).isEmpty, "keys outside the accepted channels' own: \(found.subtracting(allowed))")
        #expect(try await client.send("EXISTS", "sg:state:channel:victim").int == 0)
    }
}
