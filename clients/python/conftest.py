"""pytest configuration of the framering package: its tests import the
package from this directory (no installation needed)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
