"""Policies: guardrails, rate limits and budgets, and the state store they share.

Plain Python over plain data: nothing here imports the gateway, starlette or any HTTP server.
"""
