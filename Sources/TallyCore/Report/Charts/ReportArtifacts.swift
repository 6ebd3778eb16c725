import Foundation

/// A file a renderer writes next to its main output, e.g. `charts/accuracy-vs-cost.svg`.
public struct ReportArtifact: Sendable, Hashable {
    /// Path relative to the run directory (no `..`, not absolute).
    public let path: String
    public let contents: String

    public init(path: String, contents: String) {
        self.path = path
        self.contents = contents
    }
}

/// A renderer whose output refers to extra files (charts) that must be written with it.
public protocol ReportArtifactProducing: ReportRenderer {
    /// The extra files for `report`, with paths relative to the run directory.
    /// - Throws: when the report cannot be rendered.
    func artifacts(for report: Report) throws -> [ReportArtifact]
}

/// Writes a report's files into a run directory.
public enum ReportFiles {
    /// Renders `report` with every renderer into `directory` (`report.md`, `report.json`,
    /// `report.html`, …) plus the artifacts of renderers that have any (`charts/*.svg`).
    ///
    /// ```swift
    /// try ReportFiles.write(report, renderers: [MarkdownRenderer(chartsDirectory: "charts"), HTMLRenderer()], to: runDirectory)
    /// ```
    /// - Parameters:
    ///   - report: the report.
    ///   - renderers: the renderers to use, in order.
    ///   - directory: the run directory (created when missing).
    /// - Returns: the files written.
    /// - Throws: `TallyError` naming the file that could not be written, or a renderer's error.
    @discardableResult
    public static func write(_ report: Report, renderers: [any ReportRenderer], to directory: URL) throws -> [URL] {
        var written: [URL] = []
        try create(directory)
        for renderer in renderers {
            let url = directory.appending(path: renderer.fileName)
            try save(try renderer.render(report), to: url)
            written.append(url)
            guard let producer = renderer as? any ReportArtifactProducing else { continue }
            for artifact in try producer.artifacts(for: report) {
                guard !artifact.path.hasPrefix("/"), !artifact.path.split(separator: "/").contains("..") else {
                    throw TallyError(code: .io, message: "report artifact path \(artifact.path) must stay inside the run directory")
                }
                let target = directory.appending(path: artifact.path)
                try create(target.deletingLastPathComponent())
                try save(artifact.contents, to: target)
                written.append(target)
            }
        }
        return written
    }

    static func create(_ directory: URL) throws {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw TallyError(code: .io, message: "cannot create the report directory \(directory.path): \(error.localizedDescription); check that the parent exists and is writable")
        }
    }

    static func save(_ text: String, to url: URL) throws {
        do {
            try text.write(to: url, atomically: true, encoding: .utf8)
        } catch {
            throw TallyError(code: .io, message: "cannot write \(url.path): \(error.localizedDescription); check the directory's permissions and free space")
        }
    }
}

extension ReportCharts {
    /// The `## Charts` section of `report.md`: each chart as an image link to its SVG file
    /// under `directory`, with its description as the text alternative.
    static func markdownSection(_ charts: [Chart], directory: String) -> String {
        guard !charts.isEmpty else { return "" }
        var out = "\n## Charts\n\n"
        for chart in charts {
            let alt = chart.title.replacingOccurrences(of: "]", with: ")").replacingOccurrences(of: "[", with: "(")
            out += "### \(chart.title)\n\n![\(alt)](\(directory)/\(chart.id).svg)\n\n\(chart.description.replacingOccurrences(of: "\n", with: " "))\n\n"
            if let note = chart.note { out += "\(note)\n\n" }
        }
        return String(out.dropLast())
    }
}

extension MarkdownRenderer: ReportArtifactProducing {
    /// The charts `report.md` links to, as standalone SVG files (none unless
    /// `chartsDirectory` is set).
    public func artifacts(for report: Report) throws -> [ReportArtifact] {
        guard let chartsDirectory else { return [] }
        return charts(for: report).map { ReportArtifact(path: "\(chartsDirectory)/\($0.id).svg", contents: $0.svg(standalone: true)) }
    }

    /// The charts of `report`, with the sensitivity map over traffic (and a price when
    /// `measurements` are set) and the one-input-at-a-time tornado.
    func charts(for report: Report) -> [Chart] {
        ReportCharts.all(
            for: report, sensitivity: Sensitivity.map(report: report, measurements: measurements),
            tornado: Sensitivity.tornado(report: report, measurements: measurements))
    }

    /// The `## Charts` section linking the SVG files, or "" without a charts directory.
    func chartsSection(_ report: Report) -> String {
        guard let chartsDirectory else { return "" }
        return ReportCharts.markdownSection(charts(for: report), directory: chartsDirectory)
    }
}
