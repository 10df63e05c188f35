@testable import StreamWorker
import Testing

/// The reader marks its reads of new entries, so that a shed partition is released only once no
/// read of it is left in flight.
@Suite struct ReadSetTests {
    @Test func aShedStreamIsUnreadOnlyOnceTheReadCoveringItEnds() async throws {
        let set = ReadSet()
        set.add(["a", "b"])
        let (started, start) = AsyncStream.makeStream(of: Void.self)
        let (finish, finishing) = AsyncStream.makeStream(of: Void.self)
        let read = Task {
            await set.reading(["a", "b"]) {
                start.yield()
                for await _ in finish { break }
            }
        }
        for await _ in started { break }
        set.remove(["a"])
        #expect(await !set.waitUntilUnread(["a"], timeout: .milliseconds(50)), "the read still covers it")
        #expect(await set.waitUntilUnread(["c"], timeout: .milliseconds(50)))
        finishing.yield()
        await read.value
        #expect(await set.waitUntilUnread(["a", "b"], timeout: .seconds(30)))
    }
}
