"""Training: turns a dataset version into a scikit-learn model with metrics."""
