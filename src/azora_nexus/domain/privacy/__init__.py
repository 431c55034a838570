"""A user's data: export everything Nexus holds about them, and erase it."""
