"""python -m recinterp.report RESULTS_DIR: the headline check (recinterp.report.cli)."""
import sys

from recinterp.report.cli import main

sys.exit(main())
