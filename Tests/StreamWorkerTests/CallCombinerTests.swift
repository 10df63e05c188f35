@testable import StreamWorker
import Synchronization
import Testing

/// Group commit without Redis: what arrives while a batch is in flight goes in the next one.
@Suite struct CallCombinerTests {
    struct Odd: Error {}

    @Test func callsWhileABatchIsInFlightGoTogetherInTheNextAndEachGetsItsOwnResult() async throws {
        let batches = Mutex<[[Int]]>([])
        let gate = Gate()
        let combiner = CallCombiner<Int, Int>(maxBatch: 100) { requests in
            batches.withLock { $0.append(requests) }
            if requests == [0] { await gate.wait() }
            return requests.map { $0.isMultiple(of: 2) ? .success($0 * 10) : .failure(Odd()) }
        }
        let first = Task { try await combiner.call(0, group: "p1") }
        while batches.withLock({ $0.isEmpty }) { await Task.yield() }
        let later = (1...6).map { n in Task { try? await combiner.call(n, group: "p1") } }
        while combiner.waitingCount < 6 { await Task.yield() }
        gate.open()
        #expect(try await first.value == 0)
        var results: [Int?] = []
        for task in later { results.append(await task.value) }
        #expect(results == [nil, 20, nil, 40, nil, 60], "odd ones failed alone")
        let sent = batches.withLock { $0 }
        #expect(sent.count == 2 && sent[0] == [0] && Set(sent[1]) == Set(1...6))
    }

    @Test func groupsDoNotWaitForEachOther() async throws {
        let gate = Gate()
        let combiner = CallCombiner<String, String>(maxBatch: 10) { requests in
            if requests == ["slow"] { await gate.wait() }
            return requests.map { .success($0) }
        }
        let slow = Task { try await combiner.call("slow", group: "p1") }
        #expect(try await combiner.call("fast", group: "p2") == "fast", "another partition goes at once")
        gate.open()
        #expect(try await slow.value == "slow")
    }

    @Test func aBatchNeverExceedsItsLimit() async throws {
        let sizes = Mutex<[Int]>([])
        let gate = Gate()
        let combiner = CallCombiner<Int, Int>(maxBatch: 3) { requests in
            sizes.withLock { $0.append(requests.count) }
            if requests == [0] { await gate.wait() }
            return requests.map { .success($0) }
        }
        let first = Task { try await combiner.call(0, group: "g") }
        while sizes.withLock({ $0.isEmpty }) { await Task.yield() }
        let rest = (1...7).map { n in Task { try await combiner.call(n, group: "g") } }
        while combiner.waitingCount < 7 { await Task.yield() }
        gate.open()
        #expect(try await first.value == 0)
        for (index, task) in rest.enumerated() { #expect(try await task.value == index + 1) }
        #expect(sizes.withLock { $0 } == [1, 3, 3, 1])
    }
}
