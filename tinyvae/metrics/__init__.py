"""Disentanglement scores, one file each: MIG and MIC (mig.py, the paper's eq. 12-13), DCI,
SAP, modularity and the FactorVAE score, all over the input checks of checks.py; scores.py
lists the scores evaluate.py takes, behind one calling convention."""
