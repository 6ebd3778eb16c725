import Testing

@Test func TallyTensorTestsBuilds() { #expect(Bool(true)) }
