import RedisClient
import StreamTools
import StreamWorker
import Testing

/// Namespaces, the kept-seq check and sgctl's connection settings: pure logic.
@Suite struct StagingPlanTests {
    @Test func aNamespaceGoesInFrontOfTheKeyLayout() throws {
        let staging = try KeyNamespace(name: "staging")
        #expect(staging.keyPrefix == "sg:staging")
        #expect(staging.keys.state(channel: "42") == "sg:staging:state:channel:42")
        #expect(staging.defaultStream == "sg:staging:stream:inbound")
        #expect(staging.stream("sg:stream:inbound") == "sg:staging:stream:inbound")
        #expect(staging.stream("sg:staging:stream:inbound") == "sg:staging:stream:inbound")
        #expect(staging.stream("events") == "sg:staging:events")
        #expect(try KeyNamespace().stream("sg:stream:inbound") == "sg:stream:inbound")
    }

    @Test func namespacesThatWouldBlurTheLayoutAreRefused() {
        for name in ["", "a:b", "{p1}", "state", "lock", "st*", String(repeating: "x", count: 65)] {
            #expect(throws: NamespaceError.self, "\(name)") { try KeyNamespace(name: name) }
        }
    }

    @Test func keptSeqsMustContinueWhereTheTargetIs() {
        var plan = SeqPlan()
        for seq in 1...5 { plan.note(channel: "a", seq: Int64(seq)) }
        for seq in 3...4 { plan.note(channel: "b", seq: Int64(seq)) }
        for seq in 6...7 { plan.note(channel: "c", seq: Int64(seq)) }
        let conflicts = plan.conflicts(reached: ["a": 0, "b": 0, "c": 5])
        #expect(conflicts.map(\.channel) == ["b"])
        #expect(conflicts.first?.kind == .gap)
        let again = plan.conflicts(reached: ["a": 5, "c": 5])
        #expect(again.map(\.channel) == ["a", "b"])
        #expect(again.first?.kind == .duplicates)
        let text = SeqConflict.refusal(again, keyPrefix: "sg:staging")
        #expect(text.contains("duplicates") && text.contains("--seq restamp") && text.contains("Nothing was written"))
    }

    @Test func sgctlConnectsLikeTheWorker() throws {
        let fromEnvironment = try ToolConnection.resolve(
            url: nil, passwordFileContents: nil, user: nil,
            environment: ["SG_REDIS_URL": "redis://10.0.0.1:6380", "SG_REDIS_PASSWORD": "pw", "SG_REDIS_USER": "sg-admin"])
        #expect(fromEnvironment.configuration.endpoint == .tcp(host: "10.0.0.1", port: 6380))
        #expect(fromEnvironment.configuration.password == "pw")
        #expect(fromEnvironment.configuration.username == "sg-admin")
        #expect(fromEnvironment.warnings.isEmpty)

        let fromFile = try ToolConnection.resolve(url: "redis://127.0.0.1:7000", passwordFileContents: "secret\n", user: "ops",
                                                  environment: ["SG_REDIS_PASSWORD": "other", "SG_REDIS_URL": "redis://x:1"])
        #expect(fromFile.configuration.endpoint == .tcp(host: "127.0.0.1", port: 7000))
        #expect(fromFile.configuration.password == "secret")
        #expect(fromFile.configuration.username == "ops")

        let inFlag = try ToolConnection.resolve(url: "redis://u:pw@127.0.0.1:7000", passwordFileContents: nil, user: nil, environment: [:])
        #expect(inFlag.configuration.password == "pw")
        #expect(inFlag.warnings.count == 1)
        #expect(inFlag.warnings.first?.contains("ps") == true)
        #expect(inFlag.warnings.first?.contains("pw") == false)

        #expect(try ToolConnection.resolve(url: nil, passwordFileContents: nil, user: nil, environment: [:]).configuration
            == RedisConfiguration(url: ToolConnection.defaultURL))
        #expect(throws: ToolConnectionError.self) {
            try ToolConnection.resolve(url: nil, passwordFileContents: "\n", user: nil, environment: [:])
        }
    }

    @Test func aTimeWindowIsAnIdWindow() throws {
        let range = try EntryRange.parse(from: "2023-11-14T22:13:20Z", to: "2023-11-14T22:13:21.5Z", count: nil)
        #expect(range.start == "1700000000000-0")
        #expect(range.end == "1700000001500-\(UInt64.max)")
    }
}
