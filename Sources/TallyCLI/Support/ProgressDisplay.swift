import Foundation
import Synchronization
import TallyCore

/// Renders `ProgressEvent`s on stderr: a live bar per active phase on a terminal, plain
/// lines otherwise, nothing with `--quiet`.
final class ProgressDisplay: Sendable {
    enum Mode: Sendable { case bars, lines, quiet }

    struct Phase {
        let name: String
        var completed: Int
        var total: Int?
        var detail: String?
        let started: ContinuousClock.Instant
        /// Plain-line mode: when progress was last printed.
        var lastLine: ContinuousClock.Instant
    }

    struct State {
        var phases: [Phase] = []
        var drawnLines = 0
        var lastDraw: ContinuousClock.Instant?
    }

    let mode: Mode
    private let state = Mutex(State())

    init(mode: Mode) { self.mode = mode }

    /// The handler to pass to the runner.
    var handler: @Sendable (ProgressEvent) -> Void { { [self] event in self.handle(event) } }

    func handle(_ event: ProgressEvent) {
        guard mode != .quiet else { return }
        let output: String = state.withLock { state in
            var permanent = ""
            var force = false
            switch event {
            case .started(let phase, let total):
                if let index = state.phases.firstIndex(where: { $0.name == phase }) { state.phases.remove(at: index) }
                state.phases.append(Phase(name: phase, completed: 0, total: total, detail: nil, started: .now, lastLine: .now))
                if mode == .lines { permanent += "\(phase): started\(total.map { " (\($0) to do)" } ?? "")\n" }
                force = true
            case .advanced(let phase, let completed, let total, let detail):
                if let index = state.phases.firstIndex(where: { $0.name == phase }) {
                    state.phases[index].completed = completed
                    state.phases[index].total = total ?? state.phases[index].total
                    state.phases[index].detail = detail
                } else {
                    state.phases.append(Phase(name: phase, completed: completed, total: total, detail: detail, started: .now, lastLine: .now))
                }
                // Plain lines: at most one progress line per phase every five seconds.
                if mode == .lines, let index = state.phases.firstIndex(where: { $0.name == phase }),
                   ContinuousClock.now - state.phases[index].lastLine >= .seconds(5) {
                    state.phases[index].lastLine = .now
                    let total = state.phases[index].total.map { "/\($0)" } ?? ""
                    permanent += "\(phase): \(completed)\(total)\(detail.map { " \($0)" } ?? "")\n"
                }
            case .finished(let phase):
                if let index = state.phases.firstIndex(where: { $0.name == phase }) {
                    let done = state.phases.remove(at: index)
                    permanent += finishedLine(done) + "\n"
                } else {
                    permanent += "\(phase): done\n"
                }
                force = true
            case .note(let text):
                permanent += text + "\n"
                force = true
            }
            guard mode == .bars else { return permanent }
            // Redraw at most ten times a second unless something permanent happened.
            let now = ContinuousClock.now
            if !force, permanent.isEmpty, let last = state.lastDraw, now - last < .milliseconds(100) { return "" }
            state.lastDraw = now
            var text = ""
            if state.drawnLines > 0 { text += "\u{1B}[\(state.drawnLines)A\r\u{1B}[J" }
            text += permanent
            let width = terminalWidth()
            for phase in state.phases { text += barLine(phase, width: width) + "\n" }
            state.drawnLines = state.phases.count
            return text
        }
        if !output.isEmpty { FileHandle.standardError.write(Data(output.utf8)) }
    }

    /// Clears the live bars (before printing results).
    func clear() {
        guard mode == .bars else { return }
        let text: String = state.withLock { state in
            defer { state.drawnLines = 0 }
            return state.drawnLines > 0 ? "\u{1B}[\(state.drawnLines)A\r\u{1B}[J" : ""
        }
        if !text.isEmpty { FileHandle.standardError.write(Data(text.utf8)) }
    }

    private func finishedLine(_ phase: Phase) -> String {
        let elapsed = ContinuousClock.now - phase.started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        var line = "\(phase.name): done"
        if let total = phase.total { line += " (\(total))" }
        line += String(format: " in %.1f s", seconds)
        return line
    }

    private func barLine(_ phase: Phase, width: Int) -> String {
        var line = phase.name
        if let total = phase.total, total > 0 {
            let fraction = min(1, Double(phase.completed) / Double(total))
            let barWidth = 24
            let filled = Int((fraction * Double(barWidth)).rounded(.down))
            line += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: barWidth - filled) + "]"
            line += " \(phase.completed)/\(total)"
            let elapsed = ContinuousClock.now - phase.started
            let seconds = Double(elapsed.components.seconds)
            if phase.completed > 0 && fraction < 1 && seconds >= 1 {
                let eta = seconds / fraction * (1 - fraction)
                line += String(format: " ETA %.0fs", eta)
            }
        } else {
            let elapsed = ContinuousClock.now - phase.started
            line += phase.completed > 0 ? " \(phase.completed) done," : " running"
            line += " \(elapsed.components.seconds) s"
        }
        if let detail = phase.detail { line += "  " + detail }
        return String(line.prefix(max(20, width - 1)))
    }

    private func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 100
    }
}
