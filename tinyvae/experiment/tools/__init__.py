"""Beside the experiments: the step benchmark, one trained model exported to commit."""
