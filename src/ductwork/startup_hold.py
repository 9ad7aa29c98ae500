"""Importing this module stops garbage collection until `ductwork.startup.release()`.

Only entry points import it, before anything else (`ductwork.cli`): see `ductwork.startup`.
"""

from ductwork.startup import hold

hold()
