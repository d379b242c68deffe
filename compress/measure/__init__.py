"""Measurements of a model: size, speed, memory and task quality."""
