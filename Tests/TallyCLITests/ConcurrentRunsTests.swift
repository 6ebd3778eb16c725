import Foundation
import GRDB
import TallyCore
import Testing

/// Two `tally run` processes on one ledger, and runs killed with SIGKILL again and again:
/// the ledger stays intact, nothing finished is lost, no fine-tuning job is trained twice at
/// once, and after the last resume a rerun makes no backend call (docs/cli.md, "Two runs on
/// one ledger").
@Suite(.serialized) struct ConcurrentRunsTests {
    typealias Workspace = CLITests.Workspace

    /// `PRAGMA integrity_check` of the workspace's ledger, and its row counts.
    static func inspectLedger(_ workspace: Workspace) throws -> (integrity: String, fineTunes: [String: Int], unfinishedJobs: Int) {
        let queue = try DatabaseQueue(path: workspace.home.appending(path: "ledger.sqlite").path)
        return try queue.read { db in
            let integrity = try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? ""
            var jobs: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT strategy, COUNT(*) AS n FROM fine_tunes GROUP BY strategy") {
                jobs[row["strategy"]] = row["n"]
            }
            let unfinished = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fine_tunes WHERE status != 'finished'") ?? -1
            return (integrity, jobs, unfinished)
        }
    }

    /// Every strategy of the report measured on all 10 test rows.
    static func complete(_ stdout: String) throws -> Bool {
        let report = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        let strategies = try #require(report["strategies"] as? [[String: Any]])
        return strategies.count == 5 && strategies.allSatisfy { ($0["accuracy"] as? [String: Any])?["n"] as? Int == 10 }
    }

    @Test("two runs of one recipe at once on one ledger: both complete, each job trains once, the ledger is intact")
    func twoRunsAtOnce() async throws {
        let workspace = try Workspace()
        // Slow fine-tuning, so that both runs reach the same job while it trains.
        let slow = ["TALLY_TEST_BACKEND_DELAY_MS": "5", "TALLY_TEST_BACKEND_FINETUNE_DELAY_MS": "1500"]
        let first = try workspace.start(["run", "sentiment.yaml", "--quiet", "--json"], environment: slow)
        let second = try workspace.start(["run", "sentiment.yaml", "--quiet", "--json"], environment: slow)
        let one = try await first.wait(timeout: 240)
        let two = try await second.wait(timeout: 240)
        #expect(one.status == 0, "\(one.stderr)")
        #expect(two.status == 0, "\(two.stderr)")
        #expect(try Self.complete(one.stdout) && Self.complete(two.stdout))

        // Fine-tuning jobs are never trained twice: the second run waits for the first's
        // job and reuses it.
        let calls = workspace.calls()
        let fineTunes = calls.filter { $0.hasPrefix("finetune") }
        #expect(fineTunes.count == 2 && Set(fineTunes).count == 2, "\(fineTunes)")
        let ledger = try Self.inspectLedger(workspace)
        #expect(ledger.integrity == "ok")
        #expect(ledger.fineTunes == ["lora-r8": 1, "full": 1])
        #expect(ledger.unfinishedJobs == 0)

        // Nothing was lost: a third run makes no call at all.
        let before = calls.count
        let third = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"], timeout: 240)
        #expect(third.status == 0, "\(third.stderr)")
        #expect(workspace.calls().count == before)
    }

    @Test("kill -9 at random points many times: after the last resume nothing is lost or duplicated and the ledger is intact")
    func killSoak() async throws {
        let workspace = try Workspace()
        let slow = ["TALLY_TEST_BACKEND_DELAY_MS": "30"]
        // A fixed sequence of kill points (backend calls made before the kill), spread over
        // the run: prompting, both fine-tuning jobs, probes.
        var generator = SeededRandom(seed: 15)
        var kills = 0
        for _ in 0..<8 {
            let start = workspace.calls().count
            let target = start + 1 + Int(generator.next() % 12)
            let running = try workspace.start(["run", "sentiment.yaml", "--quiet"], environment: slow)
            do {
                try await workspace.waitUntil(seconds: 60) { workspace.calls().count >= target || !running.process.isRunning }
            } catch {
                running.process.terminate()
                throw error
            }
            guard running.process.isRunning else { break }  // it finished before this kill point
            kill(running.process.processIdentifier, SIGKILL)
            _ = try await running.wait(timeout: 30)
            kills += 1
        }
        #expect(kills >= 3, "the run finished before most kill points; the soak killed too little")
        // Let the orphaned backend finish the request it was answering.
        try await Task.sleep(for: .milliseconds(300))

        let resumed = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"], timeout: 240)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try Self.complete(resumed.stdout))
        let ledger = try Self.inspectLedger(workspace)
        #expect(ledger.integrity == "ok")
        #expect(ledger.fineTunes == ["lora-r8": 1, "full": 1])
        #expect(ledger.unfinishedJobs == 0)
        // Calls repeated across the kills are only those in flight at a kill (concurrency 2).
        let all = workspace.calls().filter { !$0.hasPrefix("finetune") }
        #expect(all.count - Set(all).count <= 2 * kills, "persisted calls were repeated after a resume")

        // Nothing was lost: a rerun makes no call.
        let count = workspace.calls().count
        let again = try await workspace.run(["run", "sentiment.yaml", "--quiet"], timeout: 240)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(workspace.calls().count == count)
    }
}
