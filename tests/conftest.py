import os
import sys
from pathlib import Path

# tests import their helpers (reference engine, synthetic data) as plain modules
sys.path.insert(0, str(Path(__file__).parent))

# freqtrade prints its result tables with rich, which wraps them to the terminal's width (80
# columns without a terminal, e.g. in CI or under a worker process); the tests read strategy names
# and counts out of those tables, so every freqtrade subprocess gets a wide, fixed width
os.environ["COLUMNS"] = "250"
