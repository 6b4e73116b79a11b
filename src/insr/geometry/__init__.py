"""Domains and point sampling."""

from insr.geometry.domains import SAMPLING_METHODS, Box, Interval, Sampler

__all__ = ["Box", "Interval", "Sampler", "SAMPLING_METHODS"]
