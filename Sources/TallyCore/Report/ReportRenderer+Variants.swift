import Foundation

// The "Prompt variants" section of each text renderer: per entry with `variants:`, every
// variant's accuracy, cost and latency, the best one marked, and the paired test of the best
// against the runner-up (`VariantGroupReport.verdict`).

extension VariantGroupReport {
    /// The rows of this group's variants, in recipe order.
    func rows(in report: Report) -> [StrategyReport] { strategies.compactMap(report.strategy(named:)) }
}

extension TerminalRenderer {
    func variantsSection(_ report: Report) -> String {
        guard let groups = report.variantGroups, !groups.isEmpty else { return "" }
        var out = "Prompt variants (* best; the best is tested against the runner-up):\n"
        for group in groups {
            out += "  \(group.name)\n"
            let rows = group.rows(in: report).map { s in
                [(s.name == group.best ? "* " : "  ") + (s.variant ?? s.name), Cells.accuracy(s), Cells.usd(s.cost.per1kRequestsUSD), Cells.latency(s.latencyMs)]
            }
            let text = table(header: ["  variant", "accuracy (95% CI)", "per 1k req", "p50/p95 ms"], rows: rows)
            for line in text.split(separator: "\n") { out += "    " + line + "\n" }
            out += wrap(group.verdict, indent: "    ") + "\n"
        }
        return out + "\n"
    }
}

extension MarkdownRenderer {
    func variantsSection(_ report: Report) -> String {
        guard let groups = report.variantGroups, !groups.isEmpty else { return "" }
        var out = "\n## Prompt variants\n\n"
        out += "Each strategy entry with `variants:`; the best variant is in bold and is tested against the runner-up on the examples both answered.\n"
        for group in groups {
            out += "\n### \(escape(group.name))\n\n"
            out += "| variant | accuracy [95% CI] | unparsed | per 1k requests | evaluation cost | latency p50 / p95 (ms) |\n"
            out += "| --- | --- | ---: | ---: | ---: | ---: |\n"
            for s in group.rows(in: report) {
                let name = escape(s.variant ?? s.name)
                out += "| \(s.name == group.best ? "**\(name)** (best)" : name) | \(Cells.accuracy(s)) | \(s.accuracy.unparsed) / \(s.accuracy.n) | \(Cells.usd(s.cost.per1kRequestsUSD)) | \(Cells.usd(s.cost.evaluationUSD)) | \(Cells.latency(s.latencyMs)) |\n"
            }
            out += "\n\(escape(group.verdict))\n"
        }
        return out
    }
}

extension HTMLRenderer {
    func variantsSection(_ page: inout HTMLPage, _ report: Report) {
        guard let groups = report.variantGroups, !groups.isEmpty else { return }
        page.raw("<section id=\"variants\" aria-labelledby=\"variants-h\">\n<h2 id=\"variants-h\">Prompt variants</h2>\n")
        for group in groups {
            page.raw("<div class=\"scroll\"><table class=\"tally variants\">\n<caption>\(esc(group.name)): its variants; the best is tested against the runner-up.</caption>\n")
            page.raw("<thead><tr><th scope=\"col\">Variant</th><th scope=\"col\">Accuracy [95% CI]</th><th scope=\"col\">Unparsed</th><th scope=\"col\">Per 1k requests</th><th scope=\"col\">Evaluation cost</th><th scope=\"col\">Latency ms<br>p50 / p95</th></tr></thead>\n<tbody>\n")
            for s in group.rows(in: report) {
                let best = s.name == group.best
                page.raw("<tr\(best ? " class=\"recommended\"" : "")><th scope=\"row\">\(esc(s.variant ?? s.name))\(best ? "<div class=\"badges\"><span class=\"badge\">best variant</span></div>" : "")</th>")
                page.raw("<td class=\"num\">\(accuracyCell(s.accuracy))</td>")
                page.raw("<td class=\"num\">\(s.accuracy.unparsed) / \(s.accuracy.n)</td>")
                page.raw("<td class=\"num\">\(esc(Cells.usd(s.cost.per1kRequestsUSD)))</td>")
                page.raw("<td class=\"num\">\(esc(Cells.usd(s.cost.evaluationUSD)))</td>")
                page.raw("<td class=\"num\">\(esc(Cells.latency(s.latencyMs)))</td></tr>\n")
            }
            page.raw("</tbody></table></div>\n<p class=\"paired\">\(esc(group.verdict))</p>\n")
        }
        page.raw("</section>\n")
    }
}
