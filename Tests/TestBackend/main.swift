import TallyCore
print("tally-test-backend: not yet implemented")
