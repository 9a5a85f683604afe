"""What Rasa loads by dotted name: NLU components, channels, the lock store, the entry point."""
