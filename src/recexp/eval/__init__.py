"""Evaluation: metric functions and evaluators."""
