"""Routing: the model catalog, route strategies and fallback order, as plain Python over plain data.

Nothing here imports the gateway or any HTTP library; the gateway hands in what it knows about a
call and gets back an ordered list of targets.
"""

from routing.catalog import Catalog, Plan, Target
from routing.config import Capabilities, ModelConfig, RouteConfig

__all__ = ["Capabilities", "Catalog", "ModelConfig", "Plan", "RouteConfig", "Target"]
