"""In-process stand-ins for external services (upstream model servers), for tests and benchmarks."""
