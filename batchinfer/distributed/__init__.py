"""Executors beyond this machine (Ray Data). Imported only when a job asks for them."""
