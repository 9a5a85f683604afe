"""Rasa SDK custom actions: thin wrappers that read the tracker and call knowledge/."""
