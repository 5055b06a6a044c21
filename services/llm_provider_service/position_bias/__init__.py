"""The package of the position-bias report: its statistics and its stores."""
