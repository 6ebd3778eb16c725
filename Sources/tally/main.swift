import TallyCore
print("tally: not yet implemented")
