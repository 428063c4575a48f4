"""Twin checks, for the project's tests, benchmarks/twin_agreement.py and users' own test suites:
``check`` (what ``harness check-family`` prints: ``check_family``, ``assert_family_agrees``), a
family's twins built from one state and compared (``twins``), and the built-in families' configs
and batches (``gpt``, ``bert``). Imports torch and TensorFlow into one process, without Horovod: no
generic layer may import it (pyproject.toml's layer contract)."""
