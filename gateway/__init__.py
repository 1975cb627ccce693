"""agentgw: an OpenAI-compatible gateway for fleets of AI agents."""

__version__ = "0.1.0"
