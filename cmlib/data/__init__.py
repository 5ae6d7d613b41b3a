"""Datasets of the course: ShapesWorld (generated) and offline real data."""
