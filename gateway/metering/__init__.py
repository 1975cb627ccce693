"""Metering: token counts, prices and cost, the usage ledger and the usage report."""
