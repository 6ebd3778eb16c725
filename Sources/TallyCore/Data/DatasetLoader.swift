import Foundation

/// Reads task data files: JSONL (plain, Alpaca, OpenAI chat fine-tuning) and CSV/TSV with a
/// header row.
///
/// ```swift
/// let data = try DatasetLoader.load(URL(fileURLWithPath: "data/test.jsonl"))
/// for problem in data.problems { print(problem) }   // rows that were skipped, with file:line
/// ```
public enum DatasetLoader {
    /// Loads a data file. The format follows the extension: `.csv`, `.tsv`, otherwise JSONL
    /// (`.jsonl`, `.json`, `.ndjson`, …), each row detected as plain, Alpaca or OpenAI chat.
    /// - Parameters:
    ///   - url: the file.
    ///   - displayPath: the path to show in messages; defaults to `url.path`.
    /// - Throws: `TallyError(.invalidData)` when the file cannot be read, has no header
    ///   (CSV/TSV), or has no usable row.
    public static func load(_ url: URL, displayPath: String? = nil) throws -> Dataset {
        let shown = displayPath ?? url.path
        let text: String
        do {
            let data = try Data(contentsOf: url)
            text = String(decoding: data, as: UTF8.self)
        } catch {
            throw TallyError(
                code: .invalidData,
                message: "cannot read data file \(shown): \(FileManager.default.fileExists(atPath: url.path) ? "it is not readable" : "no such file"). Check the path (relative paths are resolved against the recipe's directory).",
                location: SourceLocation(file: shown))
        }
        let ext = url.pathExtension.lowercased()
        let dataset: Dataset
        switch ext {
        case "csv": dataset = try loadDelimited(text, separator: ",", url: url, shown: shown, format: .csv)
        case "tsv", "tab": dataset = try loadDelimited(text, separator: "\t", url: url, shown: shown, format: .tsv)
        default: dataset = loadJSONL(text, url: url, shown: shown)
        }
        if dataset.examples.isEmpty {
            var message = "data file \(shown) has no usable row"
            if let first = dataset.problems.first { message += " (first problem: \(first))" }
            message += ". Each row needs at least one field; see docs/recipe-format.md for the accepted formats."
            throw TallyError(code: .invalidData, message: message, location: SourceLocation(file: shown))
        }
        return dataset
    }

    // MARK: JSONL

    static func loadJSONL(_ text: String, url: URL, shown: String) -> Dataset {
        var examples: [Example] = []
        var problems: [DataProblem] = []
        var seenIDs: [String: Int] = [:]
        var lineNumber = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let location = SourceLocation(file: shown, line: lineNumber)
            let value: JSONValue
            do {
                value = try JSONValue.parse(line: Substring(trimmed))
            } catch {
                problems.append(DataProblem(location: location, message: "row is not valid JSON; it is skipped. Each line must hold one JSON object."))
                continue
            }
            guard case .object(let object) = value else {
                problems.append(DataProblem(location: location, message: "row is not a JSON object; it is skipped. Each line must hold one object such as {\"input\": \"…\", \"output\": \"…\"}."))
                continue
            }
            let fields: [String: String]
            do {
                fields = try rowFields(object)
            } catch let error as RowError {
                problems.append(DataProblem(location: location, message: error.message))
                continue
            } catch {
                continue
            }
            if fields.isEmpty {
                problems.append(DataProblem(location: location, message: "row has no usable field; it is skipped."))
                continue
            }
            let id = fields["id"] ?? "L\(lineNumber)"
            if let previous = seenIDs[id] {
                problems.append(DataProblem(location: location, message: "row id '\(id)' repeats the id of line \(previous); it is skipped. Give every row a unique id."))
                continue
            }
            seenIDs[id] = lineNumber
            examples.append(Example(id: id, fields: fields, location: location))
        }
        return Dataset(url: url, displayPath: shown, format: .jsonl, examples: examples, problems: problems)
    }

    struct RowError: Error { let message: String }

    /// Fields of one JSON object row; OpenAI chat rows (`messages`) are flattened.
    static func rowFields(_ object: [String: JSONValue]) throws -> [String: String] {
        var fields: [String: String] = [:]
        for (key, value) in object where key != "messages" {
            if let text = value.fieldText { fields[key] = text }
        }
        guard let messages = object["messages"] else { return fields }
        guard case .array(let turns) = messages else {
            throw RowError(message: "row's 'messages' is not a list; it is skipped. Use the OpenAI chat format: {\"messages\": [{\"role\": \"user\", \"content\": \"…\"}, {\"role\": \"assistant\", \"content\": \"…\"}]}.")
        }
        var parsed: [(role: String, content: String)] = []
        for (index, turn) in turns.enumerated() {
            guard case .object(let message) = turn, case .string(let role)? = message["role"],
                let content = message["content"]?.scalarText
            else {
                throw RowError(message: "row's messages[\(index)] needs a string 'role' and 'content'; it is skipped.")
            }
            guard ["system", "user", "assistant"].contains(role) else {
                throw RowError(message: "row's messages[\(index)] has role '\(role)'; only system, user and assistant are understood. The row is skipped.")
            }
            parsed.append((role, content))
        }
        guard let lastAssistant = parsed.lastIndex(where: { $0.role == "assistant" }) else {
            throw RowError(message: "row's messages have no assistant turn to learn from; it is skipped. The last assistant message is the expected output.")
        }
        guard let lastUser = parsed[..<lastAssistant].lastIndex(where: { $0.role == "user" }) else {
            throw RowError(message: "row's messages have no user turn before the last assistant turn; it is skipped.")
        }
        let systems = parsed[..<lastUser].filter { $0.role == "system" }.map(\.content)
        if !systems.isEmpty { fields["system"] = systems.joined(separator: "\n") }
        let history = parsed[..<lastUser].filter { $0.role != "system" }
        if !history.isEmpty {
            fields["history"] = history.map { "\($0.role): \($0.content)" }.joined(separator: "\n")
        }
        fields["input"] = parsed[lastUser].content
        fields["output"] = parsed[lastAssistant].content
        return fields
    }

    // MARK: CSV / TSV (RFC 4180 quoting)

    static func loadDelimited(_ text: String, separator: Character, url: URL, shown: String, format: Dataset.Format) throws -> Dataset {
        let records: [(line: Int, fields: [String], error: String?)] = parseDelimited(text, separator: separator)
        guard let header = records.first else {
            throw TallyError(code: .invalidData, message: "data file \(shown) is empty; it needs a header row naming the columns (e.g. input\(separator)output) and at least one row.", location: SourceLocation(file: shown, line: 1))
        }
        if let error = header.error {
            throw TallyError(code: .invalidData, message: "the header row of \(shown) cannot be read: \(error)", location: SourceLocation(file: shown, line: header.line))
        }
        let names = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        if let empty = names.firstIndex(of: "") {
            throw TallyError(code: .invalidData, message: "column \(empty + 1) of the header row of \(shown) has no name; name every column.", location: SourceLocation(file: shown, line: header.line))
        }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw TallyError(code: .invalidData, message: "the header row of \(shown) names column '\(name)' twice; column names must be unique.", location: SourceLocation(file: shown, line: header.line))
        }
        var examples: [Example] = []
        var problems: [DataProblem] = []
        var seenIDs: [String: Int] = [:]
        for record in records.dropFirst() {
            let location = SourceLocation(file: shown, line: record.line)
            if let error = record.error {
                problems.append(DataProblem(location: location, message: "\(error); the row is skipped."))
                continue
            }
            if record.fields.count == 1 && record.fields[0].isEmpty { continue }
            guard record.fields.count == names.count else {
                problems.append(DataProblem(location: location, message: "row has \(record.fields.count) field(s) but the header has \(names.count); it is skipped. Quote fields that contain '\(separator == "\t" ? "\\t" : String(separator))' with double quotes."))
                continue
            }
            var fields: [String: String] = [:]
            for (name, value) in zip(names, record.fields) { fields[name] = value }
            let id = fields["id"].flatMap { $0.isEmpty ? nil : $0 } ?? "L\(record.line)"
            if let previous = seenIDs[id] {
                problems.append(DataProblem(location: location, message: "row id '\(id)' repeats the id of line \(previous); it is skipped. Give every row a unique id."))
                continue
            }
            seenIDs[id] = record.line
            examples.append(Example(id: id, fields: fields, location: location))
        }
        return Dataset(url: url, displayPath: shown, format: format, examples: examples, problems: problems)
    }

    /// Splits delimited text into records; each carries the line it starts on and a problem
    /// when its quoting is broken.
    static func parseDelimited(_ text: String, separator: Character) -> [(line: Int, fields: [String], error: String?)] {
        var records: [(line: Int, fields: [String], error: String?)] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var afterQuote = false
        var error: String?
        var line = 1
        var recordLine = 1
        var index = text.startIndex
        func endRecord() {
            fields.append(field)
            records.append((recordLine, fields, error))
            fields = []; field = ""; error = nil; afterQuote = false
        }
        while index < text.endIndex {
            let char = text[index]
            index = text.index(after: index)
            if inQuotes {
                if char == "\"" {
                    if index < text.endIndex, text[index] == "\"" {
                        field.append("\"")
                        index = text.index(after: index)
                    } else {
                        inQuotes = false
                        afterQuote = true
                    }
                } else {
                    if char == "\n" || char == "\r\n" { line += 1 }
                    field.append(char)
                }
                continue
            }
            switch char {
            case "\"":
                if field.isEmpty && !afterQuote {
                    inQuotes = true
                } else if error == nil {
                    error = "a double quote appears inside an unquoted field (column \(fields.count + 1)); quote the whole field and double the inner quote (\"\")"
                }
            case separator:
                fields.append(field); field = ""; afterQuote = false
            case "\n", "\r\n", "\r":
                endRecord()
                line += 1
                recordLine = line
            default:
                if afterQuote && error == nil {
                    error = "text follows a closing quote in column \(fields.count + 1)"
                }
                field.append(char)
            }
        }
        if inQuotes {
            error = "a quoted field starting on this row is never closed"
            endRecord()
        } else if !field.isEmpty || !fields.isEmpty {
            endRecord()
        }
        return records
    }
}
