"""Device lifecycle: states, the one transition table, guards, and the one state-changing path."""
