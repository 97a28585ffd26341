"""Project upkeep commands run from a checkout (`make deps`); not installed with the library."""
