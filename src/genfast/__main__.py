"""`python -m genfast ...` is the `genfast` command (so `torchrun -m genfast evaluate ...` needs no wrapper)."""
import sys

from genfast.cli import main

sys.exit(main())
