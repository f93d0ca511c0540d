"""Evaluation metrics for trained models."""
