"""The incident's life as pure functions: state folded from events, commands decided on it.

Nothing here does I/O; the handlers load, decide with these functions, and append.
"""
