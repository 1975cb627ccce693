"""A stand-in model provider for integration tests: a real HTTP server on a loopback port that
speaks the OpenAI (`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/models`) and
Anthropic (`/v1/messages`) wire formats and records every request it receives.

Behaviour is chosen by the requested `model`:

- any ordinary name: success, "Hello from stand-in <model>: <last user text>", deterministic usage
  (prompt = words of every message + 3 per message; completion = words of the reply); with
  `tools` (and no tool result last, tool choice not "none") one call to the first or forced tool
- `fail-<status>` (e.g. fail-400/401/429/500/503): that status with the wire's error body
  (429 carries `retry-after: 1`); `flaky-<status>[-<k>]`: the first k (default 1) requests for
  this model since the last `clear()` fail that way, later ones succeed
- `not-json`: 200 with `<html>oops</html>`; `slow` (5 s) / `slow-<seconds>`: sleep, then answer
- `stream-cut`, `stream-error`, `stream-slow` (>= 20 chunks, 0.2 s apart), `stream-late-end` (the
  body ends 20 ms after the last event): stream scripts; ordinary answers when not streaming
- `leak-key`: a 400 whose message echoes the key the request carried, split by a zero-width space
- `judge*`: answers as an LLM judge: `{"score": s, "pass": s >= 0.5, "reason": ...}`, s the last
  `SCORE=<0..1>` in the last user text, else 0 when it says `WRONG`, else 1
- `no-usage`: OpenAI replies carry no usage; `echo-request`: the reply text is the request body
  as compact JSON; names containing `cache`: cached prompt tokens reported (Anthropic
  cache_read 100 / cache_creation 7; OpenAI cached_tokens 100, included in prompt_tokens)

`/v1/responses` follows the same names and tool rules, and adds: with `reasoning` set, a reasoning
item and 16 reasoning tokens (within output_tokens); with a web search tool offered (and no function
tool called), a `web_search_call` item before the text; other hosted tools are accepted unused;
`stream-error` sends an `error` event mid-stream shaped as OpenAI's API sends it.
"""

from .app import create_app
from .harness import StandIn
from .log import Logged, RequestLog
from .server import ServerThread, serve_in_thread

__all__ = ["Logged", "RequestLog", "ServerThread", "StandIn", "create_app", "serve_in_thread"]
