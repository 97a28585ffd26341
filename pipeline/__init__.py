"""The DVC stages: one short script each (read params and inputs → call actrec → write outputs).

dvc.yaml runs them and passes every input and output path; no stage imports another.
"""
