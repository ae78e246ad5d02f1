"""Training scripts, run by hand (``python -m veracity.train.NAME``); never at inference."""
