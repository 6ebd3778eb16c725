import Testing

@Test func SwiftTrainerTestsBuilds() { #expect(Bool(true)) }
