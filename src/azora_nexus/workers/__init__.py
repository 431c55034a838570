"""Several worker processes behind one port: sticky routing, connection hand-over, supervision."""
