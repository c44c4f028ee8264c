"""What evaluate.py computes for each model of a run, and the records it keeps."""
