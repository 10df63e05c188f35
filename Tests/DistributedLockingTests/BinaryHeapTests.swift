@testable import DistributedLocking
import Testing

@Suite struct BinaryHeapTests {
    @Test func popsEveryElementInOrderWhateverTheInsertionOrder() {
        var generator = SystemRandomNumberGenerator()
        for size in [0, 1, 2, 7, 100] {
            let values = (0..<size).map { _ in Int.random(in: 0..<50, using: &generator) }
            var heap = BinaryHeap<Int>(by: <)
            values.forEach { heap.push($0) }
            #expect(heap.count == size)
            var popped: [Int] = []
            while let value = heap.pop() { popped.append(value) }
            #expect(popped == values.sorted())
        }
    }
}
