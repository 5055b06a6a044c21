"""Development servers shared by the tests and the benchmarks (never shipped, never imported by
the service): a private Redis server, a Tansu (Kafka-compatible) broker, a webhook receiver and
the small HTTP/1.1 helpers it is written on. Tests reach them through `tests.support`; the
benchmarks import them here, so no benchmark imports test code.
"""
