"""Input channels of our own (Rasa custom channels), named in credentials.yml."""
