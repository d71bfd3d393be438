"""Helpers shared by the suite's process-level tests (chaos, cluster): NATS servers, service
processes, a load generator and the ledger that checks what the stream holds afterwards."""
