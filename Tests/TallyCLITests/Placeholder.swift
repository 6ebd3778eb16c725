import Testing

@Test func TallyCLITestsBuilds() { #expect(Bool(true)) }
