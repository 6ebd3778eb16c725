import Synchronization
import Testing
@testable import TallyTensor

/// The thread count is scoped to the work that sets it, never process-wide.
@Suite struct ThreadingTests {
    /// How many chunks `parallelChunks` makes of `count` items, and the thread count each
    /// chunk's body sees.
    func chunking(_ count: Int) -> (chunks: Int, inside: Set<Int>) {
        let seen = Mutex<(chunks: Int, inside: Set<Int>)>((0, []))
        Threading.parallelChunks(count) { _, _ in
            let inner = Threading.threadCount
            seen.withLock {
                $0.chunks += 1
                $0.inside.insert(inner)
            }
        }
        return seen.withLock { $0 }
    }

    @Test func defaultsToTwoAndScopesRestore() {
        #expect(Threading.threadCount == 2)
        Threading.withThreadCount(3) {
            #expect(Threading.threadCount == 3)
            Threading.withThreadCount(1) { #expect(Threading.threadCount == 1) }
            #expect(Threading.threadCount == 3)
        }
        #expect(Threading.threadCount == 2)
        Threading.withThreadCount(0) { #expect(Threading.threadCount == 1, "counts below 1 mean 1") }
    }

    @Test func parallelLoopsUseTheScopedCountAndRunNestedWorkSerially() {
        for threads in [1, 2, 3] {
            let (chunks, inside) = Threading.withThreadCount(threads) { chunking(12) }
            #expect(chunks == threads)
            #expect(inside == [1], "work nested in a parallel body must not split again")
        }
        let tasks = Mutex<Set<Int>>([])
        Threading.withThreadCount(3) {
            Threading.parallelTasks(6) { _ in
                let inner = Threading.threadCount
                tasks.withLock { _ = $0.insert(inner) }
            }
        }
        #expect(tasks.withLock { $0 } == [1])
    }

    @Test func asyncScopesReachChildTasks() async {
        let counts = await Threading.withThreadCount(3) {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { Threading.threadCount } }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(counts == [3, 3, 3, 3])
        #expect(Threading.threadCount == 2)
    }

    @Test func concurrentScopesDoNotInterfere() async {
        // Two tasks alternate between parallel loops under different counts; with one
        // process-wide count, each would sometimes see the other's.
        let results = await withTaskGroup(of: (Int, [Int]).self) { group in
            for threads in [1, 3] {
                group.addTask {
                    await Threading.withThreadCount(threads) {
                        var chunks: [Int] = []
                        for _ in 0..<200 {
                            chunks.append(chunking(12).chunks)
                            await Task.yield()
                        }
                        return (threads, chunks)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (threads, chunks) in results {
            #expect(chunks.allSatisfy { $0 == threads }, "\(threads) threads")
        }
    }
}
