"""Kept while background experiments call it: `o4a diagnose` with the same arguments."""
import sys
from o4a_nav import cli
sys.exit(cli.main(["diagnose", *sys.argv[1:]]))
