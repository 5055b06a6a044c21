"""`python -m services.llm_provider_service serve` answers what Hypercorn refuses itself (a
request h11 cannot parse) in the API's error shape: `__main__` installs `server_errors`."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.integration.test_http_edges import SERVER_LAYER_CASES, assert_error_body, raw_exchange
from tests.support.processes import ProcessPool
from tests.support.redis_server import RedisServer


async def test_the_served_process_shapes_protocol_errors(redis_server: RedisServer, tmp_path: Path):
    pool = ProcessPool(tmp_path, redis_server.url, prefix=f"edges{uuid.uuid4().hex[:8]}")
    try:
        served = pool.start("serve", "serve", worker_enabled=False)
        await served.wait_ready(within=45)
        assert served.port is not None
        for raw, status, code in SERVER_LAYER_CASES.values():
            got_status, headers, body = await raw_exchange(served.port, raw)
            assert_error_body(got_status, headers, body, status, code)
    finally:
        pool.close()
