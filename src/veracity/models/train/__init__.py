"""Training scripts, run by hand (``python -m veracity.models.train.NAME``); never at inference."""
