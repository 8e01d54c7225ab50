"""TextInfuse render engine: text composed onto natural-image crops with exact labels (pure CPU).

Import the pieces you need, e.g. `from render_engine.engine import Renderer`; this file stays light.
"""

__version__ = "0.1.0"
