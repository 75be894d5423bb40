"""Data generators and targets for the paper's experiments."""
