import Foundation

// The "Learning curves" and "Test-set size" sections of the text renderers: each curve's
// points with intervals, the fit (or why there is none), the examples needed to reach
// min_accuracy, the crossings with the best prompting strategy, and the power of the paired
// test between the recommended strategy and the runner-up.

extension LearningCurveReport {
    /// The fit in words: its parameters and quality, or why there is none.
    var fitLine: String {
        guard let fit else { return fitNote ?? "No fitted curve." }
        let r2 = fit.rSquared.map { String(format: ", R² %.2f", $0) } ?? ""
        return String(format: "Fitted: accuracy = %.3f - %.3f * n^(-%.3f) (least squares%@); ceiling %@.", fit.a, fit.b, fit.c, r2, Cells.percent(fit.a))
    }

    /// One line per point: `16: 61.0% [55.2, 66.8] (3 runs)`.
    var pointCells: [[String]] {
        points.map { point in
            [String(point.size), Cells.accuracy(point.accuracy), point.runs > 1 ? "\(point.runs) seeds" : "1", Cells.usd(point.oneOffUSD)]
        }
    }
}

extension TerminalRenderer {
    func curvesSection(_ report: Report) -> String {
        var out = ""
        if let curves = report.learningCurves, !curves.isEmpty {
            out += "Learning curves (\(LearningCurveReport.fitMethod)):\n"
            for curve in curves {
                out += "  \(curve.strategy) (\(curve.kind)), accuracy by number of \(curve.unit):\n"
                let text = table(header: ["  " + (curve.axis == .shots ? "shots" : "examples"), "accuracy (95% CI)", "runs", "one-off"], rows: curve.pointCells.map { ["  " + $0[0]] + $0.dropFirst() })
                for line in text.split(separator: "\n") { out += "    " + line + "\n" }
                out += wrap(curve.fitLine, indent: "    ") + "\n"
                if let needed = curve.examplesNeeded { out += wrap("Examples needed: " + needed.summary, indent: "    ") + "\n" }
            }
            for crossing in report.curveCrossings ?? [] { out += wrap("- " + crossing.summary, indent: "  ", hanging: "    ") + "\n" }
            if let outlook = report.labelOutlook { out += wrap("Outlook: " + outlook, indent: "  ") + "\n" }
            out += "\n"
        }
        if let size = report.testSetSize {
            out += "Test-set size:\n" + wrap(size.summary, indent: "  ") + "\n\n"
        }
        return out
    }
}

extension MarkdownRenderer {
    func curvesSection(_ report: Report) -> String {
        var out = ""
        if let curves = report.learningCurves, !curves.isEmpty {
            out += "\n## Learning curves\n\n"
            out += "Each point is a measured run on a nested, label-balanced subset of the training split (or with that many demonstrations), with its 95% interval. Curves: \(escape(LearningCurveReport.fitMethod)).\n"
            for curve in curves {
                out += "\n### \(escape(curve.strategy)) (\(escape(curve.kind)))\n\n"
                out += "| \(curve.axis == .shots ? "shots" : "training examples") | accuracy [95% CI] | runs | one-off |\n| ---: | --- | ---: | ---: |\n"
                for cells in curve.pointCells { out += "| \(cells.joined(separator: " | ")) |\n" }
                out += "\n\(escape(curve.fitLine))\n"
                if let needed = curve.examplesNeeded { out += "\n**Examples needed:** \(escape(needed.summary))\n" }
            }
            if let crossings = report.curveCrossings, !crossings.isEmpty {
                out += "\nWhere fine-tuning overtakes the most accurate prompting strategy:\n\n"
                for crossing in crossings { out += "- \(escape(crossing.summary))\n" }
            }
            if let outlook = report.labelOutlook { out += "\n**Outlook:** \(escape(outlook))\n" }
        }
        if let size = report.testSetSize {
            out += "\n## Test-set size\n\n\(escape(size.summary))\n"
        }
        return out
    }
}
