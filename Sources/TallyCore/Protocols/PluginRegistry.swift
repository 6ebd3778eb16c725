import Foundation

/// The plugins a `tally` process knows, built by the CLI and passed down (no global state).
public struct PluginRegistry: Sendable {
    public private(set) var backends: [String: any BackendPlugin] = [:]

    public init(_ plugins: [any BackendPlugin] = []) {
        for plugin in plugins { register(plugin) }
    }

    /// Adds or replaces a plugin under its `name`.
    public mutating func register(_ plugin: any BackendPlugin) {
        backends[plugin.name] = plugin
    }

    /// The plugin registered under `name`.
    /// - Throws: `TallyError` naming the nearest registered plugin when there is none.
    public func backendPlugin(named name: String) throws -> any BackendPlugin {
        if let plugin = backends[name] { return plugin }
        let known = backends.keys.sorted()
        var message = "unknown backend plugin '\(name)'"
        if let near = nearestName(to: name, among: known) { message += "; did you mean '\(near)'?" }
        message += " Registered plugins: \(known.joined(separator: ", "))."
        throw TallyError(code: .unknownName, message: message)
    }
}

/// The candidate closest to `name` by edit distance, if it is plausibly a typo of it.
public func nearestName(to name: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = max(2, name.count / 3)
    return best.1 <= limit ? best.0 : nil
}

/// Levenshtein distance between two strings.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
