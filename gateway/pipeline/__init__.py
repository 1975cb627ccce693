"""The call pipeline, free of HTTP: a canonical call in, a whole answer or a stream relay out.

    CallRequest --> guard input --> route --> admit --> forward (translated per target) -->
    guard output --> answer --> finish: CallRecord --> sinks (settlement, ledger, metrics, span)

Only the endpoint adapters (`gateway.endpoints.calls`) know HTTP.
"""

from gateway.pipeline.call import CallRecord, CallRequest
from gateway.pipeline.run import Reply, StreamReply, run_call

__all__ = ["CallRecord", "CallRequest", "Reply", "StreamReply", "run_call"]
