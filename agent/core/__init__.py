"""The decision core: typed events and `now` in, decisions out. Pure: no threads, no I/O, no store tables.

Live runs, replay and tests drive the same `Core` (see engine.py); the shell turns the world into
events and applies the decisions.
"""
