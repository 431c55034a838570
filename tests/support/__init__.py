"""What every test directory shares: one in-process server (`serve_node`), waiting for a
condition (`eventually`), for a node's health (`wait_healthy`), and the sentinel pattern."""
