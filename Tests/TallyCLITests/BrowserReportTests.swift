import Foundation
import Testing
import TallyCore
import TallyTesting

/// Headless Chromium, when installed (Debian package `chromium`; scripts/test.sh installs it).
enum Chromium {
    static let path: String? = {
        let names = ["chromium", "chromium-browser", "google-chrome"]
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for name in names {
            for directory in directories {
                let candidate = directory + "/" + name
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }()

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    struct Timeout: Error, CustomStringConvertible {
        let seconds: Double
        var description: String { "chromium did not finish within \(Int(seconds)) s" }
    }

    /// Runs headless Chromium with `arguments` and a throwaway profile; kills it after `timeout`.
    static func run(_ arguments: [String], in directory: URL, timeout: Double = 90) throws -> Result {
        let binary = try #require(path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=\(directory.appending(path: "profile").path)",
        ] + arguments
        let out = directory.appending(path: "chromium.out"), err = directory.appending(path: "chromium.err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }
        process.standardOutput = outHandle
        process.standardError = errHandle
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw Timeout(seconds: timeout)
        }
        return Result(
            status: process.terminationStatus,
            stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}

/// The HTML report opened in a real browser: no console errors, every chart present, a
/// filled table, and the optional script running.
@Suite(.enabled(if: Chromium.path != nil, "needs Debian's chromium package (scripts/test.sh installs it)"))
struct BrowserReportTests {
    /// Collects script errors and console.error calls into an attribute the dumped DOM shows.
    static let errorHook = """
    <script>window.__tallyErrors=[];window.addEventListener("error",function(e){window.__tallyErrors.push(String(e.message))});\
    (function(){var original=console.error;console.error=function(){window.__tallyErrors.push(Array.prototype.join.call(arguments," "));original.apply(console,arguments)}})();\
    window.addEventListener("load",function(){document.documentElement.setAttribute("data-errors",String(window.__tallyErrors.length));document.documentElement.setAttribute("data-error-text",window.__tallyErrors.join(" | "))});</script>
    """

    func render(into directory: URL) throws -> URL {
        let measurements = SampleMeasurements.make()
        let report = Report.build(from: measurements)
        try ReportFiles.write(report, renderers: [HTMLRenderer(measurements: measurements)], to: directory)
        return directory.appending(path: "report.html")
    }

    @Test func reportLoadsWithoutErrorsAndShowsChartsAndTable() throws {
        let directory = try TemporaryDirectory()
        let page = try render(into: directory.url)
        var html = try String(contentsOf: page, encoding: .utf8)
        html = html.replacingOccurrences(of: "<head>\n", with: "<head>\n" + Self.errorHook + "\n")
        let hooked = directory.url.appending(path: "hooked.html")
        try html.write(to: hooked, atomically: true, encoding: .utf8)

        let result = try Chromium.run(["--dump-dom", hooked.absoluteString], in: directory.url)
        let dom = result.stdout
        #expect(result.status == 0, "chromium exited \(result.status): \(result.stderr.suffix(2000))")
        let errorText = dom.firstMatch(of: /data-error-text="([^"]*)"/).map { String($0.1) } ?? "the error hook did not run"
        #expect(dom.contains("data-errors=\"0\""), "script errors: \(errorText)")
        let consoleLines = result.stderr.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }
        #expect(consoleLines.isEmpty, "console output: \(consoleLines.joined(separator: "\n"))")

        // Charts: seven accessible inline SVG images, each with a title; the tornado among them.
        let charts = dom.matches(of: /<svg[^>]*role="img"/).count
        #expect(charts == 7, "found \(charts) charts")
        #expect(dom.matches(of: /<title id="[a-z-]+-title">/).count == 7)
        #expect(dom.contains("<title id=\"tornado-title\">"))
        #expect(dom.contains("<section id=\"tornado\""))
        // The tally table has a row per strategy.
        let tbody = try #require(dom.firstMatch(of: /<table class="tally">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/)?.1)
        #expect(tbody.matches(of: /<tr/).count == 3)
        #expect(tbody.contains("zero-shot"))
        // The optional script ran: search box shown and the live count filled in.
        #expect(dom.contains("<p class=\"search\">"))
        #expect(dom.contains("40 of 40 shown"))
    }

    @Test func screenshotRenders() throws {
        let directory = try TemporaryDirectory()
        let page = try render(into: directory.url)
        let png = directory.url.appending(path: "report.png")
        let result = try Chromium.run(["--hide-scrollbars", "--window-size=1280,2000", "--screenshot=\(png.path)", page.absoluteString], in: directory.url)
        #expect(result.status == 0, "chromium exited \(result.status): \(result.stderr.suffix(2000))")
        let data = try Data(contentsOf: png)
        #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a PNG")
        #expect(data.count > 20_000, "screenshot is suspiciously small (\(data.count) bytes): blank page?")
        // `TALLY_KEEP_REPORT=DIR` keeps the rendered page for a look by eye.
        if let keep = ProcessInfo.processInfo.environment["TALLY_KEEP_REPORT"], !keep.isEmpty {
            let url = URL(fileURLWithPath: keep).appending(path: "report.html")
            try? FileManager.default.removeItem(at: url)
            try FileManager.default.copyItem(at: page, to: url)
        }
        // `TALLY_REPORT_SCREENSHOT=docs/images/report.png swift test --filter Browser` refreshes the README image.
        if let target = ProcessInfo.processInfo.environment["TALLY_REPORT_SCREENSHOT"], !target.isEmpty {
            let url = URL(fileURLWithPath: target)
            try? FileManager.default.removeItem(at: url)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: png, to: url)
        }
    }
}

/// A report produced by a real `tally run` (test backend, all five strategy kinds), and
/// `tally compare` on two runs: the files exist, and the pages load cleanly in Chromium.
@Suite(.serialized) struct BrowserRunReportTests {
    @Test func realRunWritesHTMLAndChartsThatLoad() async throws {
        let workspace = try CLITests.Workspace()
        let out = workspace.root.appending(path: "out")
        let run = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--out", out.path])
        #expect(run.status == 0, "\(run.stderr)")
        let html = try String(contentsOf: out.appending(path: "report.html"), encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"))
        // Five strategies in the table; loss curves because two of them fine-tune.
        #expect(html.contains("<section id=\"loss-curves\""))
        let markdown = try String(contentsOf: out.appending(path: "report.md"), encoding: .utf8)
        for chart in ["accuracy-vs-cost", "cost-vs-traffic", "sensitivity", "tornado", "forgetting", "loss-curves"] {
            #expect(markdown.contains("](charts/\(chart).svg)"), "report.md does not link \(chart)")
            #expect(FileManager.default.fileExists(atPath: out.appending(path: "charts/\(chart).svg").path), "charts/\(chart).svg missing")
        }
        // An all-local recipe has no token prices: the map's price axis is the compute price.
        #expect(html.contains("No strategy has a token price, so the vertical axis is the compute price"))
        // `TALLY_KEEP_REPORT=DIR` keeps this run's files for a look by eye.
        if let keep = ProcessInfo.processInfo.environment["TALLY_KEEP_REPORT"], !keep.isEmpty {
            let url = URL(fileURLWithPath: keep).appending(path: "run")
            try? FileManager.default.removeItem(at: url)
            try FileManager.default.copyItem(at: out, to: url)
        }
        guard Chromium.path != nil else { return }
        let result = try Chromium.run(["--dump-dom", out.appending(path: "report.html").absoluteString], in: workspace.root)
        #expect(result.status == 0, "chromium exited \(result.status)")
        let consoleLines = result.stderr.split(separator: "\n").filter { $0.contains("CONSOLE") || $0.contains("Uncaught") }
        #expect(consoleLines.isEmpty, "console output: \(consoleLines.joined(separator: "\n"))")
        #expect(result.stdout.matches(of: /<svg[^>]*role="img"/).count >= 5)
        let tbody = try #require(result.stdout.firstMatch(of: /<table class="tally">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/)?.1)
        #expect(tbody.matches(of: /<tr/).count == 5)
        #expect(result.stdout.contains(" of 10 shown"), "the page's script did not run")
    }

    @Test func compareShowsTwoRunsSideBySide() async throws {
        let workspace = try CLITests.Workspace()
        let first = try await workspace.run(["run", "sentiment.yaml", "--quiet", "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let firstReport = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        let runID = try #require(firstReport["run_id"] as? String)
        // The second run: same calls (all cached), ten times the traffic, written to a directory.
        var recipe = try String(contentsOf: workspace.root.appending(path: "sentiment.yaml"), encoding: .utf8)
        recipe = recipe.replacingOccurrences(of: "requests_per_month: 100000", with: "requests_per_month: 1000000")
        try recipe.write(to: workspace.root.appending(path: "busier.yaml"), atomically: true, encoding: .utf8)
        let out = workspace.root.appending(path: "busier")
        let second = try await workspace.run(["run", "busier.yaml", "--quiet", "--out", out.path])
        #expect(second.status == 0, "\(second.stderr)")

        // A run id (from the ledger) against a run directory (its report.json).
        let page = workspace.root.appending(path: "compare.html")
        let compare = try await workspace.run(["compare", runID, "busier", "--html", page.path])
        #expect(compare.status == 0, "\(compare.stderr)")
        #expect(compare.stdout.contains("requests/month: 100,000 -> 1.0M"))
        #expect(compare.stdout.contains("zero-shot"))
        #expect(compare.stdout.contains("p = 1 (not significant), n = 10"), "identical answers: the paired test finds no difference")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.matches(of: /<svg role="img"/).count == 2)

        let missing = try await workspace.run(["compare", runID, "no-such-run"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no run no-such-run"))
        #expect(missing.stderr.contains("tally runs"))

        guard Chromium.path != nil else { return }
        let result = try Chromium.run(["--dump-dom", page.absoluteString], in: workspace.root)
        #expect(result.status == 0)
        #expect(result.stdout.matches(of: /<svg[^>]*role="img"/).count == 2)
        #expect(!result.stderr.contains("Uncaught"))
    }
}
