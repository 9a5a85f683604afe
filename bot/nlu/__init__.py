"""Custom Rasa NLU graph components used in config.yml."""
