"""`azora seed`: a demo world written through the domain services (events and ledger exact).

catalog.py (names and texts) and plan.py (who does what) make the same world on every run;
people.py, money.py, learning.py and work.py write it, skipping what exists; runner.py runs
the phases in order against the data dir's servers (target.py).
"""
