import sys
from pathlib import Path

# Let tests import helpers from the tests tree as plain modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))
