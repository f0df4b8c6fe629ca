"""The main module of har's multiprocessing children (see har._child_main): deliberately empty.

A child runs this file as `__mp_main__` instead of its parent's main script. Nothing else imports it, so it
runs fresh in every child.
"""
