"""The twin checks' shared pieces, for tests/unit and benchmarks/twin_agreement.py: each family's configs and
batches the tests use (``gpt``, ``bert``), and a family's twins built from one state with the torch-vs-TF
comparison (``twins``). Imports torch and TensorFlow into one process, without Horovod: no generic layer may import it
(pyproject.toml's layer contract)."""
