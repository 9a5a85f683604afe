"""The ``navigator`` command: train, run the stack, evaluate, load test, bench, retention."""
