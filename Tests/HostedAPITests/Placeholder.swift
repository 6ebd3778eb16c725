import Testing

@Test func HostedAPITestsBuilds() { #expect(Bool(true)) }
