import Foundation
import RedisClient
@testable import StreamWorker
import TestSupport
import Testing

@Suite struct ReadinessStateTests {
    struct Broken: Error, CustomStringConvertible { var description: String { "connection refused" } }
    let noGroup = RedisError.server(RedisServerError(line: "NOGROUP No such key 's1' or consumer group 'g' in XREADGROUP"))

    func reason(_ state: ReadinessState) -> String? {
        if case .notReady(let reason) = state.readiness { return reason }
        return nil
    }

    @Test func aWorkerIsNotReadyBeforeItsGroupsExist() {
        let state = ReadinessState(group: "g")
        #expect(reason(state)?.contains("starting") == true)
    }

    @Test func creatingTheGroupsMakesItReady() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        #expect(state.readiness == .ready)
    }

    @Test func aFailedReadMakesItNotReadyWithTheErrorAndASuccessfulOneReadyAgain() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        state.readFailed(streams: ["s1"], error: Broken())
        #expect(reason(state) == "Redis read failed: connection refused")
        state.readSucceeded(streams: ["s1"])
        #expect(state.readiness == .ready)
    }

    @Test func aMissingGroupIsNamedWithItsStreamsUntilItIsBack() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        state.readFailed(streams: ["s2", "s1"], error: noGroup)
        #expect(reason(state) == "consumer group 'g' does not exist on s1, s2")
        state.sampled(groupExists: ["s1": true, "s2": false])
        #expect(reason(state) == "consumer group 'g' does not exist on s2")
        state.readSucceeded(streams: ["s2"])
        #expect(state.readiness == .ready)
    }

    @Test func aFailedSampleMakesItNotReadyAndAGoodSampleClearsThat() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        state.sampleFailed(error: Broken())
        #expect(reason(state) == "Redis unreachable: connection refused")
        state.sampled(groupExists: ["s1": true])
        #expect(state.readiness == .ready)
    }

    @Test func aGoodSampleDoesNotHideAFailingReader() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        state.readFailed(streams: ["s1"], error: RedisError.server(RedisServerError(line: "NOPERM this user has no permissions")))
        state.sampled(groupExists: ["s1": true])
        #expect(reason(state)?.hasPrefix("Redis read failed: Redis error: NOPERM") == true)
        state.readSucceeded(streams: ["s1"])
        #expect(state.readiness == .ready)
    }

    @Test func shuttingDownIsNeverReady() {
        var state = ReadinessState(group: "g")
        state.groupsEnsured()
        state.stopping()
        state.readSucceeded(streams: ["s1"])
        state.sampled(groupExists: ["s1": true])
        #expect(reason(state) == "shutting down")
    }

    @Test func onlyNOGROUPCountsAsAMissingGroup() {
        #expect(ReadinessState.isMissingGroup(noGroup))
        #expect(!ReadinessState.isMissingGroup(RedisError.server(RedisServerError(line: "NOPERM no permissions"))))
        #expect(!ReadinessState.isMissingGroup(RedisError.connectionLost("eof")))
    }
}

@Suite struct GroupInfoTests {
    func group(_ name: String, pending: Int64, lag: RESPValue) -> RESPValue {
        .array([
            .bulk(Array("name".utf8)), .bulk(Array(name.utf8)),
            .bulk(Array("consumers".utf8)), .integer(2),
            .bulk(Array("pending".utf8)), .integer(pending),
            .bulk(Array("last-delivered-id".utf8)), .bulk(Array("5-0".utf8)),
            .bulk(Array("entries-read".utf8)), .integer(5),
            .bulk(Array("lag".utf8)), lag,
        ])
    }

    @Test func theGroupIsPickedByNameWithItsPendingCountAndLag() {
        let reply = RESPValue.array([group("other", pending: 9, lag: .integer(9)), group("g", pending: 3, lag: .integer(12))])
        #expect(GroupInfo.parse(reply, group: "g") == GroupInfo(pending: 3, lag: 12))
    }

    @Test func anUnknownLagIsNil() {
        #expect(GroupInfo.parse(.array([group("g", pending: 1, lag: .null)]), group: "g") == GroupInfo(pending: 1, lag: nil))
    }

    @Test func aMissingGroupIsNil() {
        #expect(GroupInfo.parse(.array([group("other", pending: 1, lag: .integer(0))]), group: "g") == nil)
        #expect(GroupInfo.parse(.array([]), group: "g") == nil)
    }
}

@Suite struct GroupInfoAgainstRedisTests {
    @Test func pendingAndLagMatchWhatTheGroupHasRead() async throws {
        let client = try TestRedis.client()
        defer { client.close() }
        let stream = TestRedis.uniqueKey()
        try await client.send("XGROUP", "CREATE", stream, "g", "0", "MKSTREAM")
        for i in 0..<5 { try await client.send("XADD", stream, "*", "n", i) }
        try await client.send("XREADGROUP", "GROUP", "g", "c", "COUNT", 2, "STREAMS", stream, ">")
        let info = GroupInfo.parse(try await client.send("XINFO", "GROUPS", stream), group: "g")
        #expect(info == GroupInfo(pending: 2, lag: 3))
        #expect(GroupInfo.parse(try await client.send("XINFO", "GROUPS", stream), group: "other") == nil)
        try await client.send("DEL", stream)
    }
}

@Suite struct EndToEndLatencyTests {
    @Test func latencyRunsFromTheEntryIdTimeToNow() {
        let now = Date(timeIntervalSince1970: 1_700_000_001.250)
        #expect(WorkerMetrics.endToEndNanoseconds(entryID: "1700000000000-7", now: now) == 1_250_000_000)
    }

    @Test func aServerClockAheadOfOursCountsAsZero() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(WorkerMetrics.endToEndNanoseconds(entryID: "1700000005000-0", now: now) == 0)
    }

    @Test func anIdThatIsNotAStreamIdIsSkipped() {
        #expect(WorkerMetrics.endToEndNanoseconds(entryID: "not-an-id", now: Date()) == nil)
    }
}
