import Testing

@Test func TallyCoreTestsBuilds() { #expect(Bool(true)) }
