"""Evaluation harness: labelled sets, analysis records, metrics and ROC plots (``veracity eval``)."""
