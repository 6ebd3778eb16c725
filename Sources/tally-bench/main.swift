print("tally-bench: not yet implemented")
