import TallyCLI

// The `tally` binary: the command line with the plugins and strategy kinds Tally ships.
// A package that extends Tally builds its own binary the same way, with its additions
// registered on `TallyExtensions.builtIn` (see Examples/swift-plugin).
await TallyCLI.main(.builtIn)
