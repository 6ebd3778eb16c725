import LexiconPlugins
import TallyCLI

// Tally's command line with everything it ships, plus this package's backend and kind.
var extensions = TallyExtensions.builtIn
extensions.plugins.register(LexiconPlugin())
extensions.strategies.register(RoleKind())
await TallyCLI.main(extensions)
