import StreamTools
import Testing

@Suite struct GroupReportTests {
    @Test func theGroupReportListsEveryHeldLockWithTTLAndFence() {
        let report = GroupReport(
            stream: "in", group: "g", length: 10, lastDeliveredID: "5-0", pending: 2, lag: 3,
            consumers: [ConsumerInfo(name: "w1", pending: 2, idleMilliseconds: 1500)],
            locks: [HeldLock(channel: "c7", key: "sg:lock:channel:c7", token: "tok", ttlMilliseconds: 4200, fence: 9, committedFence: 8)],
            deadLetters: 4, topReasons: [("max_deliveries", 3), ("oversized", 1)], reasonSample: 4, requeued: 1)
        #expect(report.text.contains("c7       4.2 s      9          8  tok"))
        #expect(report.text.contains("w1          2  1.5 s"))
        #expect(report.text.contains("max_deliveries: 3"))
        #expect(report.json["locks"] == .array([.object([
            ("channel", "c7"), ("key", "sg:lock:channel:c7"), ("token", "tok"), ("ttl_ms", 4200), ("fence", 9), ("committed_fence", 8),
        ])]))
    }
}
