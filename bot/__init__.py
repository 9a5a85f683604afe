"""Running and serving the Palliative Care Navigator: settings, command line, NLU components."""
