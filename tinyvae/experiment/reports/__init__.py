"""The reports across runs (evaluate.py --report): Table 1, its figures, the learning curves."""
