"""Request capture: the OpenAI-compatible reverse proxy and its per-request records.

    proxy.py         ProxyServer: forwards, streams, fails open, hands records to a RowSink
    request_info.py  what a request body says (model, stream, usage asked, JSON asked); usage injection
    sse.py           byte-exact server-sent-event splitting
    observe.py       what a response carried: usage, finish reason, text (memory only), chunk timing
    records.py       RequestRecord / CapturedOutput building and text sampling
    descriptors.py   output descriptors; redact.py personal-data redaction; caller.py API-key hashing
    headers.py       hop-by-hop header rules; instruments.py + catalog.py the exported metrics

No prompt or output text leaves this package except a sampled, redacted CapturedOutput when
capture.store_text is set. Import ProxyServer from agent.capture.proxy (kept out of this module so
that reading the metric catalog does not import aiohttp)."""
