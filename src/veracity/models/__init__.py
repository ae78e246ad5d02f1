"""Model cards, metrics and training code. Importing this package loads no model."""
