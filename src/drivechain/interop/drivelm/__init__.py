"""DriveLM: object tags, import, export and the challenge's scorer.

``tags`` depends on the standard library only, so sources and parsers below this layer may use it;
the other modules load lazily from the commands that need them.
"""
